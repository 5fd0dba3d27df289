defmodule AnvilCol.SpansTest do
  # The join of a span's start metadata into its stop/exception event, through
  # :telemetry.span/3 (the test double) and the forwarder attached to its
  # catalog. Not async: :telemetry's handlers are global.
  use ExUnit.Case, async: false

  import AnvilCol.Test.Helpers

  alias AnvilCol.Forwarder
  alias AnvilCol.Forwarder.Spans
  alias AnvilCol.Test.Intake

  defmodule NoCapacity do
    defexception message: "no labeler has capacity"
  end

  setup do
    intake = Intake.start()
    on_exit(fn -> Intake.stop(intake) end)
    name = :"fwd_#{System.unique_integer([:positive])}"
    start_supervised!({Forwarder, name: name, endpoint: Intake.url(intake)})
    {:ok, name: name, intake: intake}
  end

  defp sent(name) do
    :ok = Forwarder.flush(name)
    {_, reqs} = received()
    for {_, r} <- reqs, e <- r.events, not report?(e), do: e
  end

  defp names(events), do: Enum.map(events, &Enum.join(&1["name"], "."))

  # Nothing of the join is left in the process dictionary.
  defp assert_nothing_open(name) do
    assert Spans.open_count(name) == 0
    refute Enum.any?(Process.get_keys(), &match?({Spans, _}, &1))
  end

  test "a span's stop event carries its start metadata; the event's own keys win", ctx do
    :ok =
      :telemetry.span(
        [:anvil, :label, :submit],
        %{queue_id: "q-1", labeler_id: "u-1", assignment_id: "a-1", schema_version_id: "old"},
        fn -> {:ok, %{schema_version_id: "sv-1"}} end
      )

    assert [start, stop] = sent(ctx.name)
    assert names([start, stop]) == ["anvil.label.submit.start", "anvil.label.submit.stop"]
    ctx_str = start["metadata"]["telemetry_span_context"]

    assert stop["metadata"] == %{
             "queue_id" => "q-1",
             "labeler_id" => "u-1",
             "assignment_id" => "a-1",
             "schema_version_id" => "sv-1",
             "telemetry_span_context" => ctx_str
           }

    assert Map.keys(stop["measurements"]) |> Enum.sort() == ["duration", "monotonic_time"]
    assert_nothing_open(ctx.name)
  end

  test "the 3-tuple return: extra measurements, stop metadata joined", ctx do
    :telemetry.span(
      [:anvil, :export, :generate],
      %{export_id: "e", queue_id: "q", format: "csv"},
      fn ->
        {:done, %{bytes: 10}, %{row_count: 3}}
      end
    )

    assert [_, stop] = sent(ctx.name)
    assert stop["measurements"]["bytes"] == 10

    assert %{"export_id" => "e", "queue_id" => "q", "format" => "csv", "row_count" => 3} =
             stop["metadata"]

    assert_nothing_open(ctx.name)
  end

  test "nested spans: each end gets its own start", ctx do
    :telemetry.span(
      [:anvil, :assignment, :dispatch],
      %{queue_id: "q-outer", labeler_id: "u"},
      fn ->
        :telemetry.span(
          [:anvil, :policy, :select_assignment],
          %{policy_type: :round_robin, queue_id: "q-inner"},
          fn ->
            assert Spans.open_count(ctx.name) == 2
            {:ok, %{assignment_id: "a-1"}}
          end
        )

        {:ok, %{assignment_id: "a-1", policy_type: "round_robin"}}
      end
    )

    events = sent(ctx.name)

    assert names(events) == [
             "anvil.assignment.dispatch.start",
             "anvil.policy.select_assignment.start",
             "anvil.policy.select_assignment.stop",
             "anvil.assignment.dispatch.stop"
           ]

    [_, _, inner, outer] = events
    assert inner["metadata"]["queue_id"] == "q-inner"
    assert inner["metadata"]["policy_type"] == "round_robin"
    assert outer["metadata"]["queue_id"] == "q-outer"
    assert outer["metadata"]["labeler_id"] == "u"
    assert outer["metadata"]["policy_type"] == "round_robin"
    assert_nothing_open(ctx.name)
  end

  test "a span that raises: the exception event, exception.type the module; nothing left open",
       ctx do
    assert_raise NoCapacity, fn ->
      :telemetry.span([:anvil, :assignment, :dispatch], %{queue_id: "q", labeler_id: "u"}, fn ->
        raise NoCapacity
      end)
    end

    assert [_, exc] = sent(ctx.name)
    assert names([exc]) == ["anvil.assignment.dispatch.exception"]
    md = exc["metadata"]
    assert md["queue_id"] == "q" and md["labeler_id"] == "u"
    assert md["kind"] == "error"
    assert md["exception.type"] == "AnvilCol.SpansTest.NoCapacity"
    assert md["exception.message"] == "no labeler has capacity"
    assert md["reason"] =~ "no labeler has capacity"
    assert md["stacktrace"] =~ "spans_test.exs"
    assert_nothing_open(ctx.name)
  end

  test "exception.type for Erlang errors, throw and exit; the emitter's own value wins", ctx do
    catch_error(
      :telemetry.span([:anvil, :label, :submit], %{queue_id: "q"}, fn ->
        File.read!("/nonexistent/x")
      end)
    )

    catch_error(:telemetry.span([:anvil, :label, :submit], %{}, fn -> :erlang.error(:badarg) end))
    catch_throw(:telemetry.span([:anvil, :label, :submit], %{}, fn -> throw(:full) end))
    catch_exit(:telemetry.span([:anvil, :label, :submit], %{}, fn -> exit(:shutdown) end))

    catch_throw(
      :telemetry.span([:anvil, :label, :submit], %{"exception.type" => "Mine"}, fn ->
        throw(:x)
      end)
    )

    excs = for e <- sent(ctx.name), List.last(e["name"]) == "exception", do: e["metadata"]

    assert Enum.map(excs, & &1["exception.type"]) ==
             ["File.Error", "ArgumentError", "throw", "exit", "Mine"]

    assert Enum.map(excs, & &1["kind"]) == ["error", "error", "throw", "exit", "throw"]
    assert hd(excs)["exception.message"] =~ "could not read file \"/nonexistent/x\""
    assert Enum.at(excs, 2)["exception.message"] == ":full"
    assert_nothing_open(ctx.name)
  end

  test "at most #{Spans.max_open()} open spans per process: the oldest forgotten, counted", ctx do
    max = Spans.max_open()
    ctxs = for i <- 1..(max + 10), do: {i, make_ref()}

    for {i, ref} <- ctxs do
      Forwarder.handle_event(
        [:anvil, :label, :submit, :start],
        %{},
        %{queue_id: "q-#{i}", telemetry_span_context: ref},
        ctx.name
      )
    end

    assert Spans.open_count(ctx.name) == max
    assert %{spans_forgotten: 10} = Forwarder.stats(ctx.name)

    # The oldest (1..10) were forgotten; 11 and the newest still join.
    for {i, ref} <- [Enum.at(ctxs, 0), Enum.at(ctxs, 10), List.last(ctxs)] do
      Forwarder.handle_event(
        [:anvil, :label, :submit, :stop],
        %{duration: 1},
        %{telemetry_span_context: ref, i: i},
        ctx.name
      )
    end

    stops = for e <- sent(ctx.name), List.last(e["name"]) == "stop", do: e["metadata"]

    assert [%{"i" => 1} = first, %{"i" => 11, "queue_id" => "q-11"}, %{"i" => last_i} = last] =
             stops

    refute Map.has_key?(first, "queue_id")
    assert last["queue_id"] == "q-#{last_i}"
    assert Spans.open_count(ctx.name) == max - 2
    Spans.forget(ctx.name)
  end

  test "ends out of order still find their start", ctx do
    [a, b, c] = for _ <- 1..3, do: make_ref()

    for {ref, q} <- [{a, "a"}, {b, "b"}, {c, "c"}],
        do:
          Forwarder.handle_event(
            [:anvil, :x, :start],
            %{},
            %{q: q, telemetry_span_context: ref},
            ctx.name
          )

    for ref <- [a, c, b],
        do:
          Forwarder.handle_event(
            [:anvil, :x, :stop],
            %{},
            %{telemetry_span_context: ref},
            ctx.name
          )

    # Handed to handle_event/4 directly: [:anvil, :x] is not in the catalog.
    stops = for e <- sent(ctx.name), List.last(e["name"]) == "stop", do: e["metadata"]["q"]
    assert stops == ["a", "c", "b"]
    assert_nothing_open(ctx.name)
  end

  test "point events, and starts without a span context, are left alone", ctx do
    :telemetry.execute([:anvil, :queue, :created], %{}, %{queue_id: "q"})
    Forwarder.handle_event([:anvil, :x, :start], %{}, %{a: 1}, ctx.name)

    Forwarder.handle_event(
      [:anvil, :x, :stop],
      %{},
      %{telemetry_span_context: make_ref()},
      ctx.name
    )

    assert [created, start, stop] = sent(ctx.name)
    assert created["metadata"] == %{"queue_id" => "q"}
    assert start["metadata"] == %{"a" => 1}
    assert Map.keys(stop["metadata"]) == ["telemetry_span_context"]
    assert_nothing_open(ctx.name)
  end

  test "two forwarders attached to the same span each join it", ctx do
    other = Intake.start()
    on_exit(fn -> Intake.stop(other) end)
    b = :"#{ctx.name}_b"
    start_supervised!({Forwarder, name: b, endpoint: Intake.url(other)}, id: :b)

    :telemetry.span([:anvil, :label, :submit], %{queue_id: "q-2"}, fn ->
      assert Spans.open_count(ctx.name) == 1 and Spans.open_count(b) == 1
      {:ok, %{schema_version_id: "sv"}}
    end)

    :ok = Forwarder.flush(b)
    {_, reqs} = received()
    stops = for {_, r} <- reqs, e <- r.events, List.last(e["name"]) == "stop", do: e
    :ok = Forwarder.flush(ctx.name)
    {_, reqs2} = received()
    stops = stops ++ for {_, r} <- reqs2, e <- r.events, List.last(e["name"]) == "stop", do: e

    assert [%{"metadata" => %{"queue_id" => "q-2"}}, %{"metadata" => %{"queue_id" => "q-2"}}] =
             stops

    assert_nothing_open(ctx.name)
    assert_nothing_open(b)
  end

  test "spans in many processes at once: every stop joined, nothing left", ctx do
    1..20
    |> Enum.map(fn p ->
      Task.async(fn ->
        for i <- 1..50 do
          :telemetry.span([:anvil, :label, :submit], %{queue_id: "q-#{p}-#{i}"}, fn ->
            {:ok, %{i: i, p: p}}
          end)
        end

        Spans.open_count(ctx.name)
      end)
    end)
    |> Task.await_many()
    |> Enum.each(&assert(&1 == 0))

    stops = for e <- sent(ctx.name), List.last(e["name"]) == "stop", do: e["metadata"]
    assert length(stops) == 1000
    assert Enum.all?(stops, &(&1["queue_id"] == "q-#{&1["p"]}-#{&1["i"]}"))
  end
end

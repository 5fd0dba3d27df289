defmodule AnvilCol.TelemetryDoubleTest do
  # The :telemetry stand-in (test/support/telemetry.ex) must behave as the
  # package does, or the span tests of the forwarder prove nothing.
  use ExUnit.Case, async: false

  defmodule Boom do
    defexception message: "boom"
  end

  setup do
    id = {__MODULE__, make_ref()}
    me = self()

    handler = fn event, m, md, config -> send(me, {:event, event, m, md, config}) end

    events = for suffix <- [:start, :stop, :exception], do: [:anvil, :t, suffix]

    :ok = :telemetry.attach_many(id, [[:anvil, :point] | events], handler, :cfg)
    on_exit(fn -> :telemetry.detach(id) end)
    {:ok, id: id}
  end

  test "execute/3 and execute/2 reach the handler with its config; a number becomes %{value: n}" do
    :ok = :telemetry.execute([:anvil, :point], %{n: 1}, %{a: 1})
    assert_received {:event, [:anvil, :point], %{n: 1}, %{a: 1}, :cfg}
    :ok = :telemetry.execute([:anvil, :point], %{n: 2})
    assert_received {:event, [:anvil, :point], %{n: 2}, %{}, :cfg}
    :ok = :telemetry.execute([:anvil, :point], 7, %{})
    assert_received {:event, [:anvil, :point], %{value: 7}, %{}, :cfg}
    :ok = :telemetry.execute([:anvil, :other], %{}, %{})
    refute_received {:event, _, _, _, _}
  end

  test "a handler that raises is detached" do
    id = {__MODULE__, :raiser}
    :ok = :telemetry.attach_many(id, [[:anvil, :point]], fn _, _, _, _ -> raise "x" end, nil)
    :ok = :telemetry.execute([:anvil, :point], %{}, %{})
    assert_received {:event, [:anvil, :point], _, _, _}
    assert {:error, :not_found} = :telemetry.detach(id)
  end

  test "span/3 with {result, stop_metadata}: start carries the start metadata, stop only its own" do
    assert :res = :telemetry.span([:anvil, :t], %{queue_id: "q"}, fn -> {:res, %{sv: 1}} end)

    assert_received {:event, [:anvil, :t, :start], start_m, start_md, :cfg}
    assert_received {:event, [:anvil, :t, :stop], stop_m, stop_md, :cfg}
    assert %{queue_id: "q", telemetry_span_context: ctx} = start_md
    assert is_reference(ctx)
    assert map_size(start_md) == 2
    # Only the returned metadata plus the context: no queue_id.
    assert stop_md == %{sv: 1, telemetry_span_context: ctx}
    assert Map.keys(start_m) |> Enum.sort() == [:monotonic_time, :system_time]
    assert Map.keys(stop_m) |> Enum.sort() == [:duration, :monotonic_time]
    assert stop_m.duration == stop_m.monotonic_time - start_m.monotonic_time
    assert stop_m.duration >= 0
  end

  test "span/3 with {result, extra_measurements, stop_metadata}: extra merged under" do
    assert 42 =
             :telemetry.span([:anvil, :t], %{}, fn ->
               {42, %{rows: 10, duration: -1}, %{x: 1}}
             end)

    assert_received {:event, [:anvil, :t, :start], _, _, _}
    assert_received {:event, [:anvil, :t, :stop], m, md, _}
    assert m.rows == 10
    # The span's own duration wins over an extra one.
    assert m.duration >= 0
    assert %{x: 1, telemetry_span_context: _} = md
  end

  test "an event's own telemetry_span_context is kept; otherwise the span's fresh reference" do
    # As in telemetry.erl: the context is merged into each event's metadata
    # separately, so a context in the start metadata is on the start (and an
    # exception) event, and the stop event gets the fresh reference.
    :telemetry.span([:anvil, :t], %{telemetry_span_context: :mine}, fn -> {:ok, %{}} end)
    assert_received {:event, [:anvil, :t, :start], _, %{telemetry_span_context: :mine}, _}
    assert_received {:event, [:anvil, :t, :stop], _, %{telemetry_span_context: fresh}, _}
    assert is_reference(fresh)

    catch_error(
      :telemetry.span([:anvil, :t], %{telemetry_span_context: :mine}, fn -> raise "x" end)
    )

    assert_received {:event, [:anvil, :t, :start], _, %{telemetry_span_context: :mine}, _}
    assert_received {:event, [:anvil, :t, :exception], _, %{telemetry_span_context: :mine}, _}

    :telemetry.span([:anvil, :t], %{}, fn -> {:ok, %{telemetry_span_context: :ret}} end)
    assert_received {:event, [:anvil, :t, :start], _, %{telemetry_span_context: ref}, _}
    assert is_reference(ref)
    assert_received {:event, [:anvil, :t, :stop], _, %{telemetry_span_context: :ret}, _}
  end

  test "each span has its own context, nested spans too" do
    :telemetry.span([:anvil, :t], %{level: 1}, fn ->
      :telemetry.span([:anvil, :t], %{level: 2}, fn -> {:ok, %{}} end)
      {:ok, %{}}
    end)

    assert_received {:event, [:anvil, :t, :start], _, %{level: 1, telemetry_span_context: outer},
                     _}

    assert_received {:event, [:anvil, :t, :start], _, %{level: 2, telemetry_span_context: inner},
                     _}

    assert_received {:event, [:anvil, :t, :stop], _, %{telemetry_span_context: ^inner}, _}
    assert_received {:event, [:anvil, :t, :stop], _, %{telemetry_span_context: ^outer}, _}
    assert outer != inner
  end

  test "a raise: exception event with the start metadata, kind, raw reason, stacktrace; re-raised as is" do
    {exception, stack} =
      try do
        :telemetry.span([:anvil, :t], %{queue_id: "q"}, fn -> raise Boom end)
      rescue
        e in Boom -> {e, __STACKTRACE__}
      end

    assert %Boom{} = exception
    assert_received {:event, [:anvil, :t, :start], _, %{telemetry_span_context: ctx}, _}
    assert_received {:event, [:anvil, :t, :exception], m, md, _}
    refute_received {:event, [:anvil, :t, :stop], _, _, _}
    assert %{queue_id: "q", kind: :error, reason: %Boom{}, telemetry_span_context: ^ctx} = md
    # The stacktrace the event carries is the one re-raised: the raise site.
    assert md.stacktrace == stack
    assert [{__MODULE__, _, _, _} | _] = stack
    assert Map.keys(m) |> Enum.sort() == [:duration, :monotonic_time]
  end

  test "throw and exit are reported with their kind and raw reason, then rethrown" do
    assert catch_throw(:telemetry.span([:anvil, :t], %{}, fn -> throw(:oops) end)) == :oops
    assert_received {:event, [:anvil, :t, :exception], _, %{kind: :throw, reason: :oops}, _}

    assert catch_exit(:telemetry.span([:anvil, :t], %{}, fn -> exit(:bye) end)) == :bye
    assert_received {:event, [:anvil, :t, :exception], _, %{kind: :exit, reason: :bye}, _}

    # An Erlang error stays raw in the event (normalised only by rescue).
    assert catch_error(:telemetry.span([:anvil, :t], %{}, fn -> :erlang.error(:badarg) end)) ==
             :badarg

    assert_received {:event, [:anvil, :t, :exception], _, %{kind: :error, reason: :badarg}, _}
  end

  test "a return value that is not a 2- or 3-tuple raises a try clause error, no stop event" do
    assert_raise TryClauseError, fn -> :telemetry.span([:anvil, :t], %{}, fn -> :ok end) end
    assert_received {:event, [:anvil, :t, :start], _, _, _}
    refute_received {:event, [:anvil, :t, :stop], _, _, _}
    refute_received {:event, [:anvil, :t, :exception], _, _, _}
  end
end

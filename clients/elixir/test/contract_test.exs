defmodule AnvilCol.ContractTest do
  use ExUnit.Case, async: false

  alias AnvilCol.{Contract, Forwarder}
  alias AnvilCol.Forwarder.{JSON, Spans}

  # contract/events.json as it is now, read independently of the compiled
  # catalog: the wire names of every event but the forwarder's own report.
  defp contract_now do
    {:ok, doc} = Contract.path() |> File.read!() |> JSON.decode()
    doc
  end

  defp wire_names(doc) do
    for ev <- doc["events"], ev["name"] != "anvil.forwarder.report", name <- names(ev) do
      name |> String.split(".") |> Enum.map(&String.to_atom/1)
    end
  end

  defp names(%{"kind" => "span", "name" => n}),
    do: [n <> ".start", n <> ".stop", n <> ".exception"]

  defp names(%{"kind" => "event", "name" => n}), do: [n]

  describe "the catalog" do
    test "is contract/events.json's: fails when catalog/0 and the contract drift" do
      expected = wire_names(contract_now())
      assert Forwarder.catalog() == expected
      assert Contract.catalog() == expected
    end

    test "was read from the repository's contract/events.json" do
      assert Contract.path() == Path.expand("../../../contract/events.json", __DIR__)
    end

    test "holds point events and the three events of every span, not the forwarder's report" do
      catalog = Forwarder.catalog()
      assert [:anvil, :queue, :created] in catalog

      for suffix <- [:start, :stop, :exception],
          do: assert([:anvil, :label, :submit, suffix] in catalog)

      refute [:anvil, :forwarder, :report] in catalog
      refute [:anvil, :label, :submit] in catalog
      assert length(catalog) == length(Enum.uniq(catalog))
    end
  end

  describe "check/3" do
    @stop [:anvil, :label, :submit, :stop]
    @joined %{
      queue_id: "q",
      labeler_id: "u",
      assignment_id: "a",
      schema_version_id: "sv",
      telemetry_span_context: :ctx
    }

    test "a joined stop event with every required key conforms; string keys too" do
      assert :ok = Contract.check(@stop, %{duration: 5, monotonic_time: -1}, @joined)

      assert :ok =
               Contract.check(
                 "anvil.label.submit.stop",
                 %{"duration" => 5, "monotonic_time" => 1},
                 Map.new(@joined, fn {k, v} -> {Atom.to_string(k), v} end)
               )
    end

    test "an unjoined stop event lacks the start keys: each problem names the key and the event" do
      assert {:error, problems} =
               Contract.check(@stop, %{duration: 5, monotonic_time: 1}, %{
                 schema_version_id: "sv",
                 telemetry_span_context: :ctx
               })

      assert problems == [
               "anvil.label.submit.stop: metadata assignment_id is missing (required; set in the span's start metadata)",
               "anvil.label.submit.stop: metadata labeler_id is missing (required; set in the span's start metadata)",
               "anvil.label.submit.stop: metadata queue_id is missing (required; set in the span's start metadata)"
             ]
    end

    test "measurements: missing and non-numeric; nil metadata; stop-only keys not on start" do
      assert {:error, problems} =
               Contract.check(@stop, %{duration: "5"}, %{@joined | queue_id: nil})

      assert "anvil.label.submit.stop: measurement duration is not a number: \"5\"" in problems

      assert {:error, ["anvil.label.submit.stop: measurement duration is missing (required)"]} =
               Contract.check(@stop, %{}, @joined)

      assert "anvil.label.submit.stop: metadata queue_id is nil (required; set in the span's start metadata)" in problems

      # schema_version_id is returned by the function: the start event has none.
      assert :ok =
               Contract.check(
                 [:anvil, :label, :submit, :start],
                 %{monotonic_time: 1, system_time: 2},
                 Map.delete(@joined, :schema_version_id)
               )

      assert {:error, [p]} =
               Contract.check(
                 [:anvil, :assignment, :dispatch, :stop],
                 %{monotonic_time: 1, duration: 2},
                 %{queue_id: "q", labeler_id: "u", assignment_id: "a"}
               )

      assert p ==
               "anvil.assignment.dispatch.stop: metadata policy_type is missing (required; returned by the spanned function as stop metadata)"
    end

    test "exception events need kind, reason and stacktrace, and the start keys" do
      assert {:error, problems} =
               Contract.check(
                 [:anvil, :export, :generate, :exception],
                 %{monotonic_time: 1, duration: 1},
                 %{
                   export_id: "e",
                   queue_id: "q",
                   format: "csv"
                 }
               )

      assert Enum.sort(problems) == [
               "anvil.export.generate.exception: metadata kind is missing (required; added by :telemetry.span/3)",
               "anvil.export.generate.exception: metadata reason is missing (required; added by :telemetry.span/3)",
               "anvil.export.generate.exception: metadata stacktrace is missing (required; added by :telemetry.span/3)"
             ]
    end

    test "point events, unknown events, bad shapes" do
      assert :ok = Contract.check([:anvil, :queue, :created], %{}, %{queue_id: "q"})

      assert {:error, ["anvil.queue.created: metadata queue_id is missing (required)"]} =
               Contract.check([:anvil, :queue, :created], %{}, %{})

      assert {:error, ["anvil.queue.deleted: not an event of the contract (events.json)"]} =
               Contract.check([:anvil, :queue, :deleted], %{}, %{})

      assert {:error, ["anvil.queue.active_labelers: measurements are not a map: 3" | _]} =
               Contract.check([:anvil, :queue, :active_labelers], 3, %{queue_id: "q"})
    end

    test "the forwarder's own report is in the contract" do
      m = %{sent: 1, dropped: 0, rejected: 0, retries: 0, buffered: 2}
      assert :ok = Contract.check([:anvil, :forwarder, :report], m, %{forwarder: "F"})
    end
  end

  describe "capture/1 and assert_conforms/1" do
    test "capture returns the contract events of the calling process, spans joined" do
      events =
        Contract.capture(fn ->
          :telemetry.span(
            [:anvil, :label, :submit],
            %{queue_id: "q", labeler_id: "u", assignment_id: "a"},
            fn ->
              {:ok, %{schema_version_id: "sv"}}
            end
          )

          # Not in the contract: not captured.
          :telemetry.execute([:anvil, :other], %{}, %{})
          # Another process (not started from here): not captured.
          spawn(fn -> :telemetry.execute([:anvil, :queue, :created], %{}, %{queue_id: "x"}) end)
          Process.sleep(20)
          # A Task of this process: captured.
          Task.await(
            Task.async(fn ->
              :telemetry.execute([:anvil, :queue, :created], %{}, %{queue_id: "t"})
            end)
          )
        end)

      assert [
               {[:anvil, :label, :submit, :start], %{system_time: _}, start},
               {[:anvil, :label, :submit, :stop], %{duration: _}, stop},
               {[:anvil, :queue, :created], %{}, %{queue_id: "t"}}
             ] = events

      assert %{queue_id: "q", labeler_id: "u", assignment_id: "a", schema_version_id: "sv"} = stop
      assert stop.telemetry_span_context == start.telemetry_span_context
      assert :ok = Contract.check_all(events)
      # The handler is gone, and nothing of the join is left.
      refute Enum.any?(:telemetry.list_handlers([]), &match?({Contract, _}, &1.id))
      refute Enum.any?(Process.get_keys(), &match?({Spans, _}, &1))
    end

    test "assert_conforms returns the events when they conform" do
      assert [_, _] =
               Contract.assert_conforms(fn ->
                 :telemetry.span(
                   [:anvil, :export, :generate],
                   %{export_id: "e", queue_id: "q", format: "jsonl"},
                   fn ->
                     {:ok, %{row_count: 10}}
                   end
                 )
               end)
    end

    test "assert_conforms raises ExUnit.AssertionError listing every problem" do
      error =
        assert_raise ExUnit.AssertionError, fn ->
          Contract.assert_conforms(fn ->
            :telemetry.span([:anvil, :assignment, :dispatch], %{queue_id: "q"}, fn ->
              {:ok, %{assignment_id: "a"}}
            end)
          end)
        end

      assert error.message =~ "contract problem(s) in 2 event(s)"
      assert error.message =~ "anvil.assignment.dispatch.start: metadata labeler_id is missing"
      assert error.message =~ "anvil.assignment.dispatch.stop: metadata labeler_id is missing"
      assert error.message =~ "anvil.assignment.dispatch.stop: metadata policy_type is missing"
    end

    test "a span that raises inside assert_raise: the exception event is captured and checked" do
      events =
        Contract.assert_conforms(fn ->
          assert_raise RuntimeError, fn ->
            :telemetry.span(
              [:anvil, :policy, :select_assignment],
              %{policy_type: "rr", queue_id: "q"},
              fn ->
                raise "boom"
              end
            )
          end
        end)

      assert [{_, _, _}, {[:anvil, :policy, :select_assignment, :exception], _, md}] = events
      assert %{kind: :error, policy_type: "rr", queue_id: "q"} = md
    end

    test "capture joins apart from a forwarder attached to the same events" do
      intake = AnvilCol.Test.Intake.start()
      on_exit(fn -> AnvilCol.Test.Intake.stop(intake) end)

      start_supervised!(
        {Forwarder, name: :contract_fwd, endpoint: AnvilCol.Test.Intake.url(intake)}
      )

      [_, {_, _, md}] =
        Contract.capture(fn ->
          :telemetry.span([:anvil, :label, :submit], %{queue_id: "q"}, fn -> {:ok, %{}} end)
        end)

      assert md.queue_id == "q"
      :ok = Forwarder.flush(:contract_fwd)
      assert_received {:intake, _, :ok, %{events: [_, stop]}}
      assert stop["metadata"]["queue_id"] == "q"
    end
  end
end

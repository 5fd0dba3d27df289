# Drives AnvilCol.Forwarder for the end-to-end test against the built
# collector (e2e/forwarder_test.go at the repository root), one command per
# line on stdin; every answer is one line on stdout starting with "E2E ".
#
#   start NAME ENDPOINT BATCH_SIZE [FLAG ...]
#                                   start a forwarder attached to its catalog
#                                   (catalog/0, as Anvil runs it), resource
#                                   deployment.environment=e2e and
#                                   service.instance.id=e2e-NAME, reports
#                                   every 10 s (the forwarder's defaults)
#                                                              -> E2E started NAME
#       flags: noinstance           no service.instance.id in the resource:
#                                   the forwarder's default (left out on an
#                                   unnamed node such as this one, for the
#                                   agent's node_identity processor to set)
#              noreport             anvil.forwarder.report only every hour,
#                                   i.e. only when the forwarder stops (for
#                                   a test that counts every event exactly)
#              report=MS            anvil.forwarder.report every MS ms
#              pollers=MS           pollers: [{AnvilCol.E2EDriver, :poll_queues,
#                                   []}], poll_interval_ms: MS (the queue
#                                   gauges of `queue`)
#   emit NAME FROM TO               handle_event/4 for seq FROM..TO, straight
#                                   to NAME (odd: anvil.queue.created, even:
#                                   anvil.label.submit.stop) -> E2E emitted N
#   spans NAME N [TAG]              ADR-shaped spans through :telemetry.span/3
#                                   (so every forwarder started and attached
#                                   receives them; NAME must be one). ID is
#                                   TAG-i (i without TAG), TAG keeping ids
#                                   apart between drivers. For i in 1..N:
#                                     anvil.label.submit, start %{queue_id:
#                                       "q-#{rem(i, 2)}", labeler_id: "u-#{rem(i, 3)}",
#                                       assignment_id: "a-ID"}, returns
#                                       {:ok, %{schema_version_id: "sv-1"}}
#                                     anvil.assignment.dispatch, start
#                                       %{queue_id, labeler_id}, returns
#                                       %{assignment_id: "a-ID", policy_type: "round_robin"}
#                                     anvil.export.generate, start %{export_id:
#                                       "exp-ID", queue_id, format: "jsonl"},
#                                       returns %{row_count: 10}
#                                     anvil.policy.select_assignment, start
#                                       %{policy_type: "round_robin", queue_id},
#                                       returns %{assignment_id: "a-ID"}
#                                   then once, as i = N + 1: an
#                                   anvil.assignment.dispatch that raises
#                                   AnvilCol.E2EDriver.NoCapacityError
#                                   (exception.type on the wire). Each end is
#                                   joined with its start's metadata: 8 events
#                                   per i (4 start, 4 stop), then a start and
#                                   an exception      -> E2E spans N events=8N+2
#   scores QUEUE DIMENSION SCORE N  N ADR-shaped anvil.agreement.compute spans
#                                   through :telemetry.span/3: start
#                                   %{sample_id, queue_id: QUEUE, metric:
#                                   "cohen_kappa"}, the function returns the
#                                   3-tuple {result, %{score: SCORE},
#                                   %{dimension: DIMENSION}}  -> E2E scores N
#   labeler LABELER QUEUE SCORE     :telemetry.execute([:anvil, :agreement,
#                                   :labeler], %{score: SCORE}, %{labeler_id,
#                                   queue_id, metric})  -> E2E labeler LABELER
#   submits QUEUE OK RAISED INVALID OK anvil.label.submit spans on QUEUE that
#                                   return {:ok, %{schema_version_id: "sv-1"}},
#                                   RAISED that raise, and INVALID
#                                   anvil.label.validation_failed events
#                                   (schema sv-1)   -> E2E submits OK RAISED INVALID
#   queue QUEUE ACTIVE PENDING      what the pollers' query finds for QUEUE
#                                   from now on (as Anvil's database would):
#                                   poll_queues/0 emits [:anvil, :queue,
#                                   :active_labelers] %{count: ACTIVE} and
#                                   [:anvil, :queue, :pending_assignments]
#                                   %{count: PENDING}, %{queue_id: QUEUE}
#                                                              -> E2E queue QUEUE
#   dispatches QUEUE POLICY FAST SLOW
#                                   ADR-shaped anvil.assignment.dispatch spans:
#                                   start %{queue_id, labeler_id}, returning
#                                   %{assignment_id, policy_type: POLICY};
#                                   FAST return at once, SLOW after 150 ms
#                                                              -> E2E dispatches FAST SLOW
#   work QUEUE SAMPLE_TYPE N SECONDS COST
#                                   N anvil.label.submit spans, start %{queue_id,
#                                   labeler_id, assignment_id, sample_type},
#                                   returning the 3-tuple {:ok, %{time_on_task:
#                                   SECONDS in native units, cost: COST},
#                                   %{schema_version_id: "sv-1"}} -> E2E work N
#   flush NAME TIMEOUT_MS           -> E2E ok | E2E error <reason>
#   stats NAME                      -> E2E stats sent=.. dropped=.. rejected=.. retries=.. buffered=..
#   counters NAME                   every stats/1 key, sorted
#                                   -> E2E counters buffered=.. dropped=.. ... spans_forgotten=..
#   stop NAME                       stops it (it sends a last
#                                   anvil.forwarder.report)  -> E2E stopped NAME
#   quit
#
# Run from clients/elixir: mix run e2e/driver.exs (dev env: test/support is
# not compiled, so the :telemetry stand-in is loaded from there, as the
# :telemetry package would be in Anvil).

unless Code.ensure_loaded?(:telemetry) do
  Code.require_file("../test/support/telemetry.ex", __DIR__)
end

defmodule AnvilCol.E2EDriver do
  alias AnvilCol.Forwarder

  defmodule NoCapacityError do
    defexception message: "no labeler has capacity"
  end

  def loop do
    case IO.gets("") do
      :eof ->
        :ok

      {:error, _} ->
        :ok

      line ->
        case String.split(String.trim(line)) do
          ["quit"] ->
            :ok

          [] ->
            loop()

          cmd ->
            IO.puts("E2E " <> run(cmd))
            loop()
        end
    end
  end

  defp run(["start", name, endpoint, batch | flags]) do
    flags = Map.new(flags, &flag/1)

    resource =
      if flags[:noinstance],
        do: %{"deployment.environment" => "e2e"},
        # One writer, one series: two forwarders on one node must not share
        # service.instance.id (it becomes Prometheus' `instance`).
        else: %{"deployment.environment" => "e2e", "service.instance.id" => "e2e-" <> name}

    report = if flags[:report], do: [report_interval_ms: flags[:report]], else: []

    report =
      if flags[:pollers],
        do: report ++ [pollers: [{__MODULE__, :poll_queues, []}], poll_interval_ms: flags[:pollers]],
        else: report

    {:ok, _} =
      Forwarder.start_link(
        [
          name: String.to_atom(name),
          endpoint: endpoint,
          batch_size: String.to_integer(batch),
          resource: resource
        ] ++ report
      )

    "started " <> name
  end

  defp run(["emit", name, from, to]) do
    name = String.to_atom(name)
    seqs = String.to_integer(from)..String.to_integer(to)
    Enum.each(seqs, &emit(name, &1))
    "emitted #{Enum.count(seqs)}"
  end

  defp run(["spans", name, n | tag]) do
    handler = {Forwarder, String.to_atom(name)}

    if Enum.any?(:telemetry.list_handlers([:anvil]), &(&1.id == handler)) do
      n = String.to_integer(n)
      id = fn i -> Enum.join(tag ++ [i], "-") end
      Enum.each(1..n//1, &spans(&1, id.(&1)))
      failed_dispatch(n + 1)
      "spans #{n} events=#{8 * n + 2}"
    else
      "error #{name} is not started"
    end
  end

  defp run(["scores", queue, dimension, score, n]) do
    {score, ""} = Float.parse(score)
    n = String.to_integer(n)

    Enum.each(1..n//1, fn i ->
      {:ok, ^score} =
        :telemetry.span(
          [:anvil, :agreement, :compute],
          %{sample_id: "s-#{queue}-#{i}", queue_id: queue, metric: "cohen_kappa"},
          fn -> {{:ok, score}, %{score: score}, %{dimension: dimension}} end
        )
    end)

    "scores #{n}"
  end

  defp run(["labeler", labeler, queue, score]) do
    {score, ""} = Float.parse(score)

    :telemetry.execute(
      [:anvil, :agreement, :labeler],
      %{score: score},
      %{labeler_id: labeler, queue_id: queue, metric: "cohen_kappa"}
    )

    "labeler " <> labeler
  end

  defp run(["submits", queue, ok, raised, invalid]) do
    [ok, raised, invalid] = Enum.map([ok, raised, invalid], &String.to_integer/1)
    start = fn i -> %{queue_id: queue, labeler_id: "u-#{rem(i, 3)}", assignment_id: "a-#{queue}-#{i}"} end

    Enum.each(1..ok//1, fn i ->
      :ok = :telemetry.span([:anvil, :label, :submit], start.(i), fn -> {:ok, %{schema_version_id: "sv-1"}} end)
    end)

    Enum.each(1..raised//1, fn i ->
      try do
        :telemetry.span([:anvil, :label, :submit], start.(i), fn -> raise NoCapacityError end)
      rescue
        NoCapacityError -> :ok
      end
    end)

    Enum.each(1..invalid//1, fn i ->
      :telemetry.execute([:anvil, :label, :validation_failed], %{}, %{
        schema_version_id: "sv-1",
        queue_id: queue,
        labeler_id: "u-#{rem(i, 3)}",
        errors: [%{field: "bbox", error: "out of bounds"}]
      })
    end)

    "submits #{ok} #{raised} #{invalid}"
  end

  defp run(["queue", queue, active, pending]) do
    queues = :persistent_term.get({__MODULE__, :queues}, %{})
    counts = {String.to_integer(active), String.to_integer(pending)}
    :persistent_term.put({__MODULE__, :queues}, Map.put(queues, queue, counts))
    "queue " <> queue
  end

  defp run(["dispatches", queue, policy, fast, slow]) do
    [fast, slow] = Enum.map([fast, slow], &String.to_integer/1)

    dispatch = fn i, sleep ->
      :telemetry.span([:anvil, :assignment, :dispatch], %{queue_id: queue, labeler_id: "u-#{rem(i, 3)}"}, fn ->
        if sleep > 0, do: Process.sleep(sleep)
        {:ok, %{assignment_id: "a-#{queue}-#{i}", policy_type: policy}}
      end)
    end

    Enum.each(1..fast//1, &dispatch.(&1, 0))
    Enum.each(1..slow//1, &dispatch.(&1, 150))
    "dispatches #{fast} #{slow}"
  end

  defp run(["work", queue, sample_type, n, seconds, cost]) do
    [n, seconds, cost] = Enum.map([n, seconds, cost], &String.to_integer/1)
    on_task = System.convert_time_unit(seconds, :second, :native)

    Enum.each(1..n//1, fn i ->
      :ok =
        :telemetry.span(
          [:anvil, :label, :submit],
          %{queue_id: queue, labeler_id: "u-#{rem(i, 3)}", assignment_id: "a-#{queue}-#{i}", sample_type: sample_type},
          fn -> {:ok, %{time_on_task: on_task, cost: cost}, %{schema_version_id: "sv-1"}} end
        )
    end)

    "work #{n}"
  end

  defp run(["flush", name, timeout]) do
    case Forwarder.flush(String.to_atom(name), String.to_integer(timeout)) do
      :ok -> "ok"
      {:error, reason} -> "error " <> inspect(reason)
    end
  end

  defp run(["stats", name]) do
    s = Forwarder.stats(String.to_atom(name))

    "stats sent=#{s.sent} dropped=#{s.dropped} rejected=#{s.rejected} " <>
      "retries=#{s.retries} buffered=#{s.buffered}"
  end

  defp run(["counters", name]) do
    counts =
      String.to_atom(name)
      |> Forwarder.stats()
      |> Enum.sort()
      |> Enum.map_join(" ", fn {k, v} -> "#{k}=#{v}" end)

    "counters " <> counts
  end

  defp run(["stop", name]) do
    :ok = GenServer.stop(String.to_atom(name))
    "stopped " <> name
  end

  defp run(other), do: "error unknown command #{inspect(other)}"

  defp flag("noinstance"), do: {:noinstance, true}
  defp flag("noreport"), do: {:report, 3_600_000}
  defp flag("report=" <> ms), do: {:report, String.to_integer(ms)}
  defp flag("pollers=" <> ms), do: {:pollers, String.to_integer(ms)}
  defp flag(other), do: raise(ArgumentError, "unknown start flag #{inspect(other)}")

  # The pollers' query, as Anvil's would read its database: every queue's
  # active labelers and pending assignments as `queue` last set them.
  def poll_queues do
    for {queue, {active, pending}} <- :persistent_term.get({__MODULE__, :queues}, %{}) do
      :telemetry.execute([:anvil, :queue, :active_labelers], %{count: active}, %{queue_id: queue})
      :telemetry.execute([:anvil, :queue, :pending_assignments], %{count: pending}, %{queue_id: queue})
    end

    :ok
  end

  defp emit(name, seq) when rem(seq, 2) == 1 do
    Forwarder.handle_event(
      [:anvil, :queue, :created],
      %{},
      %{queue_id: "q-#{rem(seq, 5)}", seq: seq},
      name
    )
  end

  defp emit(name, seq) do
    # 40 ms in the BEAM's native unit, as :telemetry.span/3 measures it.
    duration = System.convert_time_unit(40, :millisecond, :native)

    Forwarder.handle_event(
      [:anvil, :label, :submit, :stop],
      %{duration: duration},
      %{queue_id: "q-e2e", schema_version_id: "sv-1", labeler_id: "u-#{seq}", seq: seq},
      name
    )
  end

  # ADR-008-shaped spans, as Anvil emits them.
  defp spans(i, id) do
    queue_id = "q-#{rem(i, 2)}"
    labeler_id = "u-#{rem(i, 3)}"
    assignment_id = "a-" <> id

    :ok =
      :telemetry.span(
        [:anvil, :label, :submit],
        %{queue_id: queue_id, labeler_id: labeler_id, assignment_id: assignment_id},
        fn -> {:ok, %{schema_version_id: "sv-1"}} end
      )

    {:ok, ^assignment_id} =
      :telemetry.span(
        [:anvil, :assignment, :dispatch],
        %{queue_id: queue_id, labeler_id: labeler_id},
        fn ->
          {{:ok, assignment_id}, %{assignment_id: assignment_id, policy_type: "round_robin"}}
        end
      )

    {:ok, 10} =
      :telemetry.span(
        [:anvil, :export, :generate],
        %{export_id: "exp-" <> id, queue_id: queue_id, format: "jsonl"},
        fn -> {{:ok, 10}, %{row_count: 10}} end
      )

    ^assignment_id =
      :telemetry.span(
        [:anvil, :policy, :select_assignment],
        %{policy_type: "round_robin", queue_id: queue_id},
        fn -> {assignment_id, %{assignment_id: assignment_id}} end
      )
  end

  defp failed_dispatch(i) do
    :telemetry.span(
      [:anvil, :assignment, :dispatch],
      %{queue_id: "q-#{rem(i, 2)}", labeler_id: "u-#{rem(i, 3)}"},
      fn -> raise NoCapacityError end
    )
  rescue
    NoCapacityError -> :ok
  end
end

AnvilCol.E2EDriver.loop()

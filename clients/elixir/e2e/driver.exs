# Drives AnvilCol.Forwarder for the end-to-end test against the built
# collector (e2e/forwarder_test.go at the repository root), one command per
# line on stdin; every answer is one line on stdout starting with "E2E ".
#
#   start NAME ENDPOINT BATCH_SIZE  start a forwarder         -> E2E started NAME
#   emit NAME FROM TO               handle_event/4 for seq FROM..TO
#                                   (odd: anvil.queue.created, even:
#                                   anvil.label.submit.stop) -> E2E emitted N
#   flush NAME TIMEOUT_MS           -> E2E ok | E2E error <reason>
#   stats NAME                      -> E2E stats sent=.. dropped=.. rejected=.. retries=.. buffered=..
#   stop NAME                       -> E2E stopped NAME
#   quit
#
# Run from clients/elixir: mix run e2e/driver.exs

defmodule AnvilCol.E2EDriver do
  alias AnvilCol.Forwarder

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

  defp run(["start", name, endpoint, batch]) do
    {:ok, _} =
      Forwarder.start_link(
        name: String.to_atom(name),
        endpoint: endpoint,
        events: :all,
        batch_size: String.to_integer(batch),
        # One writer, one series: two forwarders on one node must not share
        # service.instance.id (it becomes Prometheus' `instance`).
        resource: %{"deployment.environment" => "e2e", "service.instance.id" => "e2e-" <> name}
      )

    "started " <> name
  end

  defp run(["emit", name, from, to]) do
    name = String.to_atom(name)
    seqs = String.to_integer(from)..String.to_integer(to)
    Enum.each(seqs, &emit(name, &1))
    "emitted #{Enum.count(seqs)}"
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

  defp run(["stop", name]) do
    :ok = GenServer.stop(String.to_atom(name))
    "stopped " <> name
  end

  defp run(other), do: "error unknown command #{inspect(other)}"

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
end

AnvilCol.E2EDriver.loop()

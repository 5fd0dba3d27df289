defmodule AnvilCol.Test.Helpers do
  @moduledoc false
  import ExUnit.Assertions

  alias AnvilCol.Forwarder

  # Emits one event per seq through the handler, as :telemetry would.
  def emit(name, seqs, event \\ [:anvil, :queue, :created]) do
    for seq <- seqs, do: :ok = Forwarder.handle_event(event, %{}, %{seq: seq}, name)
    :ok
  end

  # Drains the intake's reports: the seqs of every event it answered 200 for
  # (less those it rejected and the forwarder's own anvil.forwarder.report
  # events), in arrival order, and the requests it saw.
  def received do
    received([], [])
  end

  defp received(acc, reqs) do
    receive do
      {:intake, _n, action, req} ->
        seqs =
          for {e, i} <- Enum.with_index(req.events),
              accepted?(action, i),
              not report?(e),
              do: e["metadata"]["seq"]

        received(acc ++ seqs, reqs ++ [{action, req}])
    after
      0 -> {acc, reqs}
    end
  end

  defp accepted?(action, _) when action in [:ok, :hold], do: true
  # A raw 200 accepts only when it is the receiver's answer.
  defp accepted?({:raw, "HTTP/1.1 200" <> rest, _}, _), do: rest =~ ~s("accepted")
  defp accepted?({:reject, idx}, i), do: i not in idx
  defp accepted?(_, _), do: false

  # A 200 answer with body parts as HTTP/1.1 chunks.
  def chunked(parts) do
    chunks = Enum.map(parts, &[Integer.to_string(byte_size(&1), 16), "\r\n", &1, "\r\n"])

    IO.iodata_to_binary([
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
      chunks,
      "0\r\n\r\n"
    ])
  end

  # Polls cond every 10 ms until it holds; fails after timeout ms.
  def wait_until(cond, timeout \\ 5_000, message \\ "condition") do
    deadline = System.monotonic_time(:millisecond) + timeout
    do_wait(cond, deadline, message)
  end

  defp do_wait(cond, deadline, message) do
    cond do
      cond.() ->
        :ok

      System.monotonic_time(:millisecond) > deadline ->
        flunk("timed out waiting for #{message}")

      true ->
        Process.sleep(10)
        do_wait(cond, deadline, message)
    end
  end

  def report?(%{"name" => ["anvil", "forwarder", "report"]}), do: true
  def report?(_), do: false

  # The anvil.forwarder.report events the intake accepted, in order.
  def reports(reqs) do
    for {action, req} <- reqs,
        {e, i} <- Enum.with_index(req.events),
        accepted?(action, i),
        report?(e),
        do: e
  end

  # Every event the forwarder took (those emitted and its own reports) is in
  # exactly one counter.
  def assert_accounted(name, emitted) do
    s = Forwarder.stats(name)
    assert s.sent + s.rejected + s.dropped + s.buffered == emitted + s.reports, inspect(s)
    s
  end
end

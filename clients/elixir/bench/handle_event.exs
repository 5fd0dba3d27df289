# The cost of AnvilCol.Forwarder.handle_event/4 in the emitting process
# (ADR-008's budget: 10 µs per event; this client's: 2 µs), for a lone stop
# event and for a span's start + stop pair (the join), and how fast the
# forwarder process encodes what it receives. :timer.tc, no Benchee.
#
#   cd clients/elixir && mix run bench/handle_event.exs

alias AnvilCol.Forwarder

n = 100_000
runs = 7

# Nothing is sent while measuring (one batch would need 10^7 events, the
# interval is a minute): the forwarder only receives, encodes and buffers.
{:ok, _} =
  Forwarder.start_link(
    name: :bench,
    endpoint: "http://127.0.0.1:9",
    events: :all,
    batch_size: 10_000_000,
    max_buffer: 10_000_000,
    flush_interval_ms: 60_000
  )

event = [:anvil, :label, :submit, :stop]
measurements = %{duration: 30_000_000, monotonic_time: -576_460_751_000_000_000}

metadata = %{
  queue_id: "q-1",
  schema_version_id: "sv-3",
  labeler_id: "u-7",
  telemetry_span_context: make_ref()
}

one_run = fn ->
  {caller_us, :ok} =
    :timer.tc(fn ->
      Enum.each(1..n, fn _ -> Forwarder.handle_event(event, measurements, metadata, :bench) end)
    end)

  # stats/1 is answered after every cast before it: the forwarder's own time.
  {drained_us, _} = :timer.tc(fn -> Forwarder.stats(:bench) end)
  {caller_us, caller_us + drained_us}
end

# A span as :telemetry.span/3 emits it: a start event (the start metadata
# is kept in the process dictionary) and its stop event (joined with it).
start_event = [:anvil, :label, :submit, :start]
start_measurements = %{monotonic_time: -576_460_751_000_000_000, system_time: 1_700_000_000}
ctx = make_ref()

start_metadata = %{
  queue_id: "q-1",
  labeler_id: "u-7",
  assignment_id: "a-9",
  telemetry_span_context: ctx
}

stop_metadata = %{schema_version_id: "sv-3", telemetry_span_context: ctx}

pair_run = fn ->
  {us, :ok} =
    :timer.tc(fn ->
      Enum.each(1..div(n, 2), fn _ ->
        Forwarder.handle_event(start_event, start_measurements, start_metadata, :bench)
        Forwarder.handle_event(event, measurements, stop_metadata, :bench)
      end)
    end)

  {drained_us, _} = :timer.tc(fn -> Forwarder.stats(:bench) end)
  {us, us + drained_us}
end

# Warm up once, then measure.
one_run.()
results = for _ <- 1..runs, do: one_run.()
pair_run.()
pairs = for _ <- 1..runs, do: pair_run.()

per_event = fn us -> us / n end
fmt = fn x -> :erlang.float_to_binary(x, decimals: 2) end
callers = results |> Enum.map(&per_event.(elem(&1, 0))) |> Enum.sort()
totals = results |> Enum.map(&(n / (elem(&1, 1) / 1_000_000))) |> Enum.sort()
median = fn l -> Enum.at(l, div(length(l), 2)) end

IO.puts("handle_event/4 in the caller, #{n} calls x #{runs} runs (µs per event):")

IO.puts(
  "  min #{fmt.(hd(callers))}  median #{fmt.(median.(callers))}  max #{fmt.(List.last(callers))}"
)

IO.puts("forwarder process: received + encoded events/s:")

IO.puts(
  "  min #{round(hd(totals))}  median #{round(median.(totals))}  max #{round(List.last(totals))}"
)

pair_callers = pairs |> Enum.map(&per_event.(elem(&1, 0))) |> Enum.sort()

IO.puts(
  "span start + stop (joined), #{div(n, 2)} pairs x #{runs} runs (µs per event, " <>
    "half the pair's cost):"
)

IO.puts(
  "  min #{fmt.(hd(pair_callers))}  median #{fmt.(median.(pair_callers))}  " <>
    "max #{fmt.(List.last(pair_callers))}"
)

{none_us, _} =
  :timer.tc(fn ->
    Enum.each(1..n, fn _ ->
      Forwarder.handle_event(event, measurements, metadata, :no_forwarder)
    end)
  end)

IO.puts("handle_event/4 with no forwarder running: #{fmt.(none_us / n)} µs per event")

IO.puts(
  "schedulers: #{System.schedulers_online()}, OTP #{System.otp_release()}, Elixir #{System.version()}"
)

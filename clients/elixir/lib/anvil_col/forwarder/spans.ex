defmodule AnvilCol.Forwarder.Spans do
  @max_open 64

  @moduledoc """
  Joins the start and the end of a `:telemetry.span/3` span, in the process
  that emits them (span/3 runs the start and the end in the caller).

  `:telemetry.span/3` gives its `...:stop` event only the metadata the
  spanned function returned (its `...:exception` event the start metadata):
  the `queue_id`, `labeler_id`, `format`... that Anvil puts in the start
  metadata would be missing from the stop event. So on a `...:start` event
  whose metadata has `telemetry_span_context`, `join/4` keeps that metadata
  in the process dictionary, keyed by the context; on the `...:stop` or
  `...:exception` event with the same context it merges the kept metadata
  under the event's own (the event's keys win) and forgets it.

  Bounded: at most #{@max_open} open spans per process and owner (a forwarder, or
  one `AnvilCol.Contract.capture/1`); beyond that the oldest is forgotten
  (counted in slot 2 of the owner's counters, when it has any). A span that
  ends is forgotten at once, and the process dictionary entry goes with the
  last open span. Each owner has its own entry, so two forwarders attached to
  the same events each join on their own.
  """

  @doc "The most open spans kept per process and owner."
  @spec max_open() :: pos_integer
  def max_open, do: @max_open

  @doc """
  The metadata to send for `event`: for a span's end, merged over the start
  metadata kept for its context; for a span's start, kept (and returned as
  is); any other event's metadata as is. `owner` names the process
  dictionary entry; `counters` (or `nil`) counts forgotten spans in slot 2.
  """
  @spec join(term, list, term, :counters.counters_ref() | nil) :: term
  def join(owner, event, %{telemetry_span_context: ctx} = metadata, counters) do
    case last(event) do
      :start ->
        open({__MODULE__, owner}, ctx, metadata, counters)
        metadata

      :stop ->
        close({__MODULE__, owner}, ctx, metadata)

      :exception ->
        close({__MODULE__, owner}, ctx, metadata)

      _ ->
        metadata
    end
  end

  def join(_owner, _event, metadata, _counters), do: metadata

  @doc "How many spans `owner` holds open in the calling process."
  @spec open_count(term) :: non_neg_integer
  def open_count(owner) do
    case Process.get({__MODULE__, owner}) do
      {n, _} -> n
      nil -> 0
    end
  end

  @doc "Forgets every span `owner` holds open in the calling process."
  @spec forget(term) :: :ok
  def forget(owner) do
    Process.delete({__MODULE__, owner})
    :ok
  end

  defp last([a]), do: a
  defp last([_ | t]), do: last(t)
  defp last(_), do: nil

  # Open spans, newest first: {count, [{ctx, start_metadata}]}.
  defp open(key, ctx, md, counters) do
    case Process.get(key) do
      nil ->
        Process.put(key, {1, [{ctx, md}]})

      {n, spans} when n < @max_open ->
        Process.put(key, {n + 1, [{ctx, md} | spans]})

      {n, spans} ->
        if counters, do: :counters.add(counters, 2, 1)
        Process.put(key, {n, [{ctx, md} | Enum.drop(spans, -1)]})
    end
  end

  defp close(key, ctx, md) do
    case Process.get(key) do
      # The usual case: the span that ends is the newest open one.
      {1, [{^ctx, start}]} ->
        Process.delete(key)
        Map.merge(start, md)

      {n, [{^ctx, start} | rest]} ->
        Process.put(key, {n - 1, rest})
        Map.merge(start, md)

      {n, spans} ->
        case List.keytake(spans, ctx, 0) do
          {{_, start}, []} ->
            Process.delete(key)
            Map.merge(start, md)

          {{_, start}, rest} ->
            Process.put(key, {n - 1, rest})
            Map.merge(start, md)

          nil ->
            md
        end

      nil ->
        md
    end
  end
end

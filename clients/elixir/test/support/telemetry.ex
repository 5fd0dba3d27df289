defmodule :telemetry do
  @moduledoc false
  # A stand-in for the :telemetry hex package (not reachable offline), used by
  # the tests and loaded by e2e/driver.exs: attach_many/4, detach/1,
  # list_handlers/1, execute/2,3 and span/3 with the package's semantics
  # (beam-telemetry/telemetry, src/telemetry.erl), written from its
  # documented behaviour:
  #
  #   * execute/3 calls every handler attached to the event, in the caller;
  #     a handler that raises is detached (the others still run); a number
  #     as measurements becomes %{value: n};
  #   * span/3 emits prefix ++ [:start] with %{monotonic_time, system_time}
  #     and the start metadata plus telemetry_span_context (a new reference
  #     unless the start metadata already has that key); then, when the
  #     function returns {result, stop_metadata} or {result, extra, stop_metadata},
  #     prefix ++ [:stop] with %{duration, monotonic_time} (over extra) and
  #     ONLY the stop metadata plus the context; when it raises, throws or
  #     exits, prefix ++ [:exception] with %{duration, monotonic_time} and
  #     the START metadata plus kind, reason (the raw reason, as caught) and
  #     stacktrace (and the context), then raises again with the original
  #     stacktrace. Any other return value raises a try_clause error, with no
  #     stop or exception event.

  @key {__MODULE__, :handlers}

  def attach(id, event, fun, config), do: attach_many(id, [event], fun, config)

  def attach_many(id, events, fun, config) when is_list(events) and is_function(fun, 4) do
    if Enum.any?(handlers(), &(&1.id == id)) do
      {:error, :already_exists}
    else
      put([%{id: id, events: events, fun: fun, config: config} | handlers()])
      :ok
    end
  end

  def detach(id) do
    if Enum.any?(handlers(), &(&1.id == id)) do
      put(Enum.reject(handlers(), &(&1.id == id)))
      :ok
    else
      {:error, :not_found}
    end
  end

  def execute(event, measurements), do: execute(event, measurements, %{})

  def execute(event, value, metadata) when is_number(value),
    do: execute(event, %{value: value}, metadata)

  def execute([_ | _] = event, measurements, metadata)
      when is_map(measurements) and is_map(metadata) do
    for h <- handlers(), event in h.events do
      try do
        h.fun.(event, measurements, metadata, h.config)
      catch
        _, _ -> detach(h.id)
      end
    end

    :ok
  end

  def span(prefix, start_metadata, fun) when is_list(prefix) and is_function(fun, 0) do
    t0 = System.monotonic_time()
    ctx = make_ref()

    execute(
      prefix ++ [:start],
      %{monotonic_time: t0, system_time: System.system_time()},
      with_ctx(start_metadata, ctx)
    )

    try do
      fun.()
    catch
      kind, reason ->
        t1 = System.monotonic_time()
        stack = __STACKTRACE__

        execute(
          prefix ++ [:exception],
          %{duration: t1 - t0, monotonic_time: t1},
          start_metadata
          |> Map.merge(%{kind: kind, reason: reason, stacktrace: stack})
          |> with_ctx(ctx)
        )

        :erlang.raise(kind, reason, stack)
    else
      {result, stop_metadata} ->
        t1 = System.monotonic_time()

        execute(
          prefix ++ [:stop],
          %{duration: t1 - t0, monotonic_time: t1},
          with_ctx(stop_metadata, ctx)
        )

        result

      {result, extra, stop_metadata} ->
        t1 = System.monotonic_time()

        execute(
          prefix ++ [:stop],
          Map.merge(extra, %{duration: t1 - t0, monotonic_time: t1}),
          with_ctx(stop_metadata, ctx)
        )

        result
    end
  end

  # The caller's own context wins.
  defp with_ctx(%{telemetry_span_context: _} = md, _ctx), do: md
  defp with_ctx(md, ctx), do: Map.put(md, :telemetry_span_context, ctx)

  def list_handlers(prefix) do
    Enum.filter(handlers(), fn h -> Enum.any?(h.events, &List.starts_with?(&1, prefix)) end)
  end

  defp handlers, do: :persistent_term.get(@key, [])
  defp put(hs), do: :persistent_term.put(@key, hs)
end

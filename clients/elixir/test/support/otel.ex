defmodule :otel_tracer do
  @moduledoc false
  # Test-only stand-in for opentelemetry-erlang's current span context: the
  # test puts {:span_ctx, trace_id, span_id, flags} in the process dictionary.
  def current_span_ctx, do: Process.get(:fake_otel_span_ctx, :undefined)
end

defmodule :otel_span do
  @moduledoc false
  def is_valid({:span_ctx, t, s, _}), do: t != 0 and s != 0
  def is_valid(_), do: false
  def trace_id({:span_ctx, t, _, _}), do: t
  def span_id({:span_ctx, _, s, _}), do: s
  def trace_flags({:span_ctx, _, _, f}), do: f
end

defmodule :telemetry do
  @moduledoc false
  # A test-only stand-in for the :telemetry hex package (not reachable
  # offline): the same attach_many/4, detach/1 and execute/3, and like the
  # real one it detaches a handler that raises.

  @key {__MODULE__, :handlers}

  def attach_many(id, events, fun, config) when is_function(fun, 4) do
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

  def execute(event, measurements, metadata) do
    for h <- handlers(), event in h.events do
      try do
        h.fun.(event, measurements, metadata, h.config)
      catch
        _, _ -> detach(h.id)
      end
    end

    :ok
  end

  def list_handlers(_prefix), do: handlers()

  defp handlers, do: :persistent_term.get(@key, [])
  defp put(hs), do: :persistent_term.put(@key, hs)
end

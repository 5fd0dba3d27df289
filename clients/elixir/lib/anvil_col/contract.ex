defmodule AnvilCol.Contract do
  @moduledoc """
  Anvil's event contract, `contract/events.json` at the root of the anvilcol
  repository, read at compile time: which events exist, and the measurements
  and metadata keys each must carry **on the wire**, that is after the
  forwarder joined a span's start metadata into its stop or exception event
  (`AnvilCol.Forwarder.Spans`).

    * `catalog/0` - the `:telemetry` event names Anvil emits: every point
      event, and `...:start`, `...:stop`, `...:exception` of every span
      (`AnvilCol.Forwarder` attaches to these);
    * `check/3` - one wire event against the contract;
    * `capture/1` and `assert_conforms/1` - for Anvil's own ExUnit suites:
      run a function, capture the contract events it emits (spans joined as
      the forwarder joins them), and check them.

  The Go side (`contract/contract.go`, the anvil receiver's catalog) reads
  the same file.
  """

  alias AnvilCol.Forwarder.{JSON, Spans}

  # This file is lib/anvil_col/contract.ex of the Mix project clients/elixir;
  # the contract is ../../contract/events.json from the project.
  @project Path.expand("../..", __DIR__)
  @path Path.expand("../../contract/events.json", @project)
  @external_resource @path

  # Emitted by the forwarder itself (into its own buffer), never attached.
  @own ["anvil.forwarder.report"]

  contract =
    case File.read(@path) do
      {:ok, bin} ->
        case JSON.decode(bin) do
          {:ok, %{"events" => events} = doc} when is_list(events) ->
            doc

          other ->
            raise CompileError,
              description: "#{@path}: not a contract (#{inspect(other, limit: 5)})"
        end

      {:error, reason} ->
        raise CompileError,
          description:
            "#{@path}: #{:file.format_error(reason)}. AnvilCol.Forwarder is built from a " <>
              "clone of the anvilcol repository (a git dependency with " <>
              "`subdir: \"clients/elixir\"`, or a path dependency), which has contract/events.json"
    end

  required = fn keys, pred ->
    for {key, spec} <- Enum.sort(keys || %{}), spec["required"] == true, pred.(spec) do
      {String.to_atom(key), key, spec["from"]}
    end
  end

  specs =
    Enum.flat_map(contract["events"], fn ev ->
      name = ev["name"]
      atoms = name |> String.split(".") |> Enum.map(&String.to_atom/1)
      ms = ev["measurements"]
      md = ev["metadata"]

      case ev["kind"] do
        "event" ->
          [
            {name,
             %{
               event: atoms,
               contract: name,
               phase: nil,
               measurements: required.(ms, fn _ -> true end),
               metadata: required.(md, fn _ -> true end)
             }}
          ]

        "span" ->
          for phase <- ["start", "stop", "exception"] do
            from = if phase == "stop", do: ["start", "stop"], else: ["start"]

            extra =
              if phase == "exception",
                do: for(k <- [:kind, :reason, :stacktrace], do: {k, Atom.to_string(k), "span"}),
                else: []

            {name <> "." <> phase,
             %{
               event: atoms ++ [String.to_atom(phase)],
               contract: name,
               phase: String.to_atom(phase),
               measurements: required.(ms, &(phase in (&1["on"] || []))),
               metadata: required.(md, &(&1["from"] in from)) ++ extra
             }}
          end

        other ->
          raise CompileError, description: "#{@path}: #{name}: unknown kind #{inspect(other)}"
      end
    end)

  for own <- @own, not Enum.any?(contract["events"], &(&1["name"] == own)) do
    raise CompileError, description: "#{@path}: #{own} is missing (the forwarder sends it)"
  end

  @specs Map.new(specs)
  @catalog for {_, spec} <- specs, spec.contract not in @own, do: spec.event
  @report_event [:anvil, :forwarder, :report]

  @typedoc "An event as sent: its name, measurements and (joined) metadata."
  @type wire_event :: {[atom, ...], map, map}

  @doc """
  The `:telemetry` events of the contract, in its order: every point event,
  and the start, stop and exception events of every span; not
  `anvil.forwarder.report` (the forwarder's own).
  """
  @spec catalog() :: [[atom, ...]]
  def catalog, do: @catalog

  @doc false
  # The file the contract was read from, at compile time.
  def path, do: @path

  @doc false
  def report_event, do: @report_event

  @doc """
  Checks one wire event (a span's stop or exception event after the join)
  against the contract: the event is known, its required measurements are
  there and numeric, its required metadata keys are there and not `nil`.
  Keys may be atoms or strings. `event` is a list of atoms or strings, or
  the dotted name.

  Returns `:ok` or `{:error, problems}`, each problem a string naming the
  event and the key.
  """
  @spec check(list | String.t(), map, map) :: :ok | {:error, [String.t()]}
  def check(event, measurements, metadata) do
    name = dotted(event)

    case Map.fetch(@specs, name) do
      :error ->
        {:error, ["#{name}: not an event of the contract (#{Path.basename(@path)})"]}

      {:ok, spec} ->
        problems =
          measurement_problems(name, spec, measurements) ++
            metadata_problems(name, spec, metadata)

        if problems == [], do: :ok, else: {:error, problems}
    end
  end

  @doc """
  Checks a list of wire events (`capture/1`'s); `{:error, problems}` lists
  the problems of all of them.
  """
  @spec check_all([wire_event]) :: :ok | {:error, [String.t()]}
  def check_all(events) do
    problems =
      Enum.flat_map(events, fn {event, m, md} ->
        case check(event, m, md) do
          :ok -> []
          {:error, problems} -> problems
        end
      end)

    if problems == [], do: :ok, else: {:error, problems}
  end

  @doc """
  Runs `fun` and returns the contract events (`catalog/0`) emitted meanwhile
  by the calling process and by the processes it started with `Task`
  (`$callers`), in order, as `{event, measurements, metadata}` with each
  span's start metadata joined into its stop or exception event, exactly as
  `AnvilCol.Forwarder` sends them (before JSON encoding).

  It attaches a `:telemetry` handler of its own for the duration of `fun`
  (events of other processes are ignored, so `async: true` tests do not see
  each other's events). If `fun` raises, so does `capture/1`: wrap
  `assert_raise` inside `fun` to capture a span's exception event.
  """
  @spec capture((() -> any)) :: [wire_event]
  def capture(fun) when is_function(fun, 0) do
    unless Code.ensure_loaded?(:telemetry) do
      raise ArgumentError, "AnvilCol.Contract.capture/1 needs :telemetry"
    end

    ref = make_ref()
    id = {__MODULE__, ref}

    :ok =
      apply(:telemetry, :attach_many, [id, @catalog, &__MODULE__.handle_event/4, {self(), ref}])

    try do
      fun.()
    after
      apply(:telemetry, :detach, [id])
      Spans.forget({__MODULE__, ref})
    end

    collect(ref, [])
  end

  @doc """
  `capture/1`, then `check_all/1`: returns the captured events when they all
  conform, else raises `ExUnit.AssertionError` listing every problem.
  """
  @spec assert_conforms((() -> any)) :: [wire_event]
  def assert_conforms(fun) do
    events = capture(fun)

    case check_all(events) do
      :ok ->
        events

      {:error, problems} ->
        raise ExUnit.AssertionError,
          message:
            "#{length(problems)} contract problem(s) in #{length(events)} event(s) " <>
              "(#{Path.basename(@path)}):\n" <> Enum.map_join(problems, "\n", &("  " <> &1))
    end
  end

  @doc false
  # capture/1's handler; runs in the emitting process.
  def handle_event(event, measurements, metadata, {pid, ref}) do
    if self() == pid or pid in Process.get(:"$callers", []) do
      send(pid, {ref, event, measurements, Spans.join({__MODULE__, ref}, event, metadata, nil)})
    end

    :ok
  end

  defp collect(ref, acc) do
    receive do
      {^ref, event, m, md} -> collect(ref, [{event, m, md} | acc])
    after
      0 -> Enum.reverse(acc)
    end
  end

  defp dotted(name) when is_binary(name), do: name
  defp dotted(name) when is_list(name), do: Enum.map_join(name, ".", &to_string/1)
  defp dotted(name), do: inspect(name)

  defp measurement_problems(name, spec, m) when is_map(m) do
    Enum.flat_map(spec.measurements, fn {atom, key, _} ->
      case measurement(m, atom, key) do
        nil -> []
        problem -> ["#{name}: measurement #{key} #{problem}"]
      end
    end)
  end

  defp measurement_problems(name, _spec, m),
    do: ["#{name}: measurements are not a map: #{inspect(m)}"]

  defp measurement(m, atom, key) do
    case fetch(m, atom, key) do
      {:ok, v} when is_number(v) -> nil
      {:ok, v} -> "is not a number: #{inspect(v)}"
      :error -> "is missing (required)"
    end
  end

  defp metadata_problems(name, spec, md) when is_map(md) do
    Enum.flat_map(spec.metadata, fn {atom, key, from} ->
      case metadata(md, atom, key, from) do
        nil -> []
        problem -> ["#{name}: metadata #{key} #{problem}"]
      end
    end)
  end

  defp metadata_problems(name, _spec, md),
    do: ["#{name}: metadata is not a map: #{inspect(md)}"]

  defp metadata(md, atom, key, from) do
    case fetch(md, atom, key) do
      {:ok, nil} -> "is nil (required#{where(from)})"
      {:ok, _} -> nil
      :error -> "is missing (required#{where(from)})"
    end
  end

  defp where("start"), do: "; set in the span's start metadata"
  defp where("stop"), do: "; returned by the spanned function as stop metadata"
  defp where("span"), do: "; added by :telemetry.span/3"
  defp where(_), do: ""

  defp fetch(map, atom, key) do
    case map do
      %{^atom => v} -> {:ok, v}
      %{^key => v} -> {:ok, v}
      _ -> :error
    end
  end
end

defmodule AnvilCol.Forwarder.Encoder do
  @moduledoc """
  Turns `:telemetry` events into protocol v1 event objects
  (`receiver/anvilreceiver/README.md`) and any Elixir term into JSON.

  `term/1` makes a term JSON-shaped:

    * `nil`, booleans, integers and floats stay; other atoms become strings
      (`:q1` -> `"q1"`, `MyApp.Queue` -> `"MyApp.Queue"`);
    * UTF-8 binaries stay; other binaries are base64-encoded (lossless);
    * maps keep their nesting, keys become strings;
    * structs become maps without `__struct__`; exceptions become their
      message; `Date`, `Time`, `NaiveDateTime` and `DateTime` their ISO 8601
      string;
    * lists stay lists, tuples become lists, improper lists `inspect/1`;
    * pids, references, functions, ports and bitstrings become `inspect/1`.

  The receiver rejects metadata nested deeper than 8 levels (counting
  `metadata` itself), so a non-empty container at the 8th level is sent as
  its `inspect/1` string instead of losing the whole event.
  """

  alias AnvilCol.Forwarder.JSON

  # The receiver's limit: 8 levels counting `metadata` itself.
  @max_depth 8

  @doc "Makes any term JSON-shaped (see the module doc)."
  @spec term(term) :: term
  def term(t), do: term(t, 1)

  @doc false
  def term(nil, _), do: nil
  def term(b, _) when is_boolean(b), do: b
  def term(a, _) when is_atom(a), do: atom(a)
  def term(n, _) when is_number(n), do: n
  def term(s, _) when is_binary(s), do: string(s)
  def term(%{__struct__: mod} = s, d), do: struct(mod, s, d)
  def term(m, d) when is_map(m) and d >= @max_depth and map_size(m) > 0, do: inspect(m)
  def term(m, d) when is_map(m), do: Map.new(m, fn {k, v} -> {key(k), term(v, d + 1)} end)
  def term([], _), do: []
  def term(l, d) when is_list(l) and d >= @max_depth, do: inspect(l)

  def term(l, d) when is_list(l) do
    case list(l, d, []) do
      :improper -> inspect(l)
      json -> json
    end
  end

  def term(t, d) when is_tuple(t), do: term(Tuple.to_list(t), d)
  def term(other, _), do: inspect(other)

  defp list([h | t], d, acc), do: list(t, d, [term(h, d + 1) | acc])
  defp list([], _, acc), do: Enum.reverse(acc)
  # An improper list has no JSON shape.
  defp list(_tail, _d, _acc), do: :improper

  defp struct(mod, s, _d) when mod in [Date, Time, NaiveDateTime, DateTime],
    do: mod.to_iso8601(s)

  defp struct(_mod, s, d) do
    if is_exception(s) do
      try do
        string(Exception.message(s))
      rescue
        _ -> inspect(s)
      end
    else
      s |> Map.from_struct() |> term(d)
    end
  end

  defp atom(a) do
    case Atom.to_string(a) do
      "Elixir." <> rest -> rest
      s -> s
    end
  end

  defp string(s) do
    if String.valid?(s), do: s, else: Base.encode64(s)
  end

  defp key(k) when is_binary(k), do: string(k)
  defp key(k) when is_atom(k), do: atom(k)
  defp key(k) when is_integer(k), do: Integer.to_string(k)
  defp key(k), do: inspect(k)

  @doc """
  The protocol v1 event object of one `:telemetry` event: `name` as a list of
  strings, `time_unix_nano`, the BEAM's native `time_unit`, the numeric
  measurements (others are left out: the receiver rejects an event with a
  non-numeric measurement) and the metadata made JSON-shaped.

  For `:telemetry.span/3`'s `...:exception` events, `reason` becomes
  `Exception.format_banner/3` and `stacktrace` `Exception.format_stacktrace/1`;
  `exception.type` (the raised exception's module, `"File.Error"`, or the
  kind, `"throw"`, `"exit"`) and `exception.message` are added unless the
  metadata has them; `kind` stays.
  """
  @spec event(list, map, map, integer, String.t()) :: map
  def event(name, measurements, metadata, time_unix_nano, time_unit) do
    name = List.wrap(name)

    %{
      "name" => Enum.map(name, &segment/1),
      "time_unix_nano" => time_unix_nano,
      "time_unit" => time_unit,
      "measurements" => measurements(measurements),
      "metadata" => metadata(List.last(name), metadata)
    }
  end

  defp segment(a) when is_atom(a), do: Atom.to_string(a)
  defp segment(s) when is_binary(s), do: string(s)
  defp segment(other), do: inspect(other)

  defp measurements(m) when is_map(m) do
    for {k, v} <- m, is_number(v), into: %{}, do: {key(k), v}
  end

  defp measurements(_), do: %{}

  defp metadata(:exception, %{kind: kind, reason: reason} = md) do
    stack = Map.get(md, :stacktrace)
    stack = if is_list(stack), do: stack, else: []

    banner =
      try do
        Exception.format_banner(kind, reason, stack)
      rescue
        _ -> inspect(reason)
      end

    formatted =
      try do
        Exception.format_stacktrace(stack)
      rescue
        _ -> inspect(stack)
      end

    {type, message} = exception(kind, reason, stack)

    md
    |> Map.put(:reason, banner)
    |> Map.put(:stacktrace, formatted)
    |> put_new_key("exception.type", :"exception.type", type)
    |> put_new_key("exception.message", :"exception.message", message)
    |> term()
  end

  defp metadata(_, md) when is_map(md), do: term(md)
  defp metadata(_, nil), do: %{}
  defp metadata(_, other), do: %{"value" => term(other)}

  # exception.type: the module of a raised exception (an Erlang error
  # normalised as `rescue` does: :badarg -> ArgumentError), else the kind
  # (throw, exit); exception.message: the exception's message, the thrown
  # value or the exit reason.
  defp exception(:error, reason, stack) do
    e = Exception.normalize(:error, reason, stack)
    {atom(e.__struct__), Exception.message(e)}
  rescue
    _ -> {"error", inspect(reason)}
  end

  defp exception(:exit, reason, _stack), do: {"exit", Exception.format_exit(reason)}
  defp exception(kind, reason, _stack), do: {atom(kind), inspect(reason)}

  # A value the emitter set itself (atom or string key) wins.
  defp put_new_key(md, key, atom, value) do
    if Map.has_key?(md, key) or Map.has_key?(md, atom),
      do: md,
      else: Map.put(md, key, value)
  end

  @doc """
  The JSON of `event/5`, in one pass over the terms with the built-in
  encoder (the forwarder's hot path), or through `event/5` and `Jason`.
  """
  @spec event_json(list, map, map, integer, String.t(), :jason | :builtin) :: iodata
  def event_json(name, measurements, metadata, time, unit, :jason),
    do: encode(event(name, measurements, metadata, time, unit), :jason)

  def event_json(name, measurements, metadata, time, unit, :builtin) do
    name = List.wrap(name)
    md = metadata_json(List.last(name), metadata)

    [
      "{\"name\":[",
      name |> Enum.map(&[?", JSON.escape(segment(&1)), ?"]) |> Enum.intersperse(?,),
      "],\"time_unix_nano\":",
      Integer.to_string(time),
      ",\"time_unit\":\"",
      unit,
      "\",\"measurements\":",
      measurements_json(measurements),
      ",\"metadata\":",
      md,
      ?}
    ]
  end

  defp measurements_json(m) when is_map(m) do
    :maps.fold(
      fn
        k, v, acc when is_integer(v) -> [?,, key_json(k), Integer.to_string(v) | acc]
        k, v, acc when is_float(v) -> [?,, key_json(k), JSON.encode(v) | acc]
        _, _, acc -> acc
      end,
      [],
      m
    )
    |> object()
  end

  defp measurements_json(_), do: "{}"

  defp metadata_json(:exception, %{kind: _, reason: _} = md),
    do: JSON.encode(metadata(:exception, md))

  defp metadata_json(_, md) when is_map(md), do: json(md, 1)
  defp metadata_json(_, nil), do: "{}"
  defp metadata_json(_, other), do: ["{\"value\":", json(other, 2), ?}]

  # term/2 and JSON.encode/1 at once, without the intermediate term.
  defp json(nil, _), do: "null"
  defp json(true, _), do: "true"
  defp json(false, _), do: "false"
  defp json(a, _) when is_atom(a), do: [?", JSON.escape(atom(a)), ?"]
  defp json(n, _) when is_integer(n), do: Integer.to_string(n)
  defp json(f, _) when is_float(f), do: JSON.encode(f)
  defp json(s, _) when is_binary(s), do: [?", JSON.escape(string(s)), ?"]
  defp json(%{__struct__: _} = s, d), do: JSON.encode(term(s, d))
  defp json(m, d) when is_map(m) and d >= @max_depth and map_size(m) > 0, do: str(inspect(m))

  defp json(m, d) when is_map(m) do
    :maps.fold(fn k, v, acc -> [?,, key_json(k), json(v, d + 1) | acc] end, [], m)
    |> object()
  end

  defp json([], _), do: "[]"
  defp json(l, d) when is_list(l), do: JSON.encode(term(l, d))
  defp json(t, d) when is_tuple(t), do: json(Tuple.to_list(t), d)
  defp json(other, _), do: str(inspect(other))

  defp str(s), do: [?", JSON.escape(s), ?"]

  defp key_json(k), do: [?", JSON.escape(key(k)), ?", ?:]

  defp object([]), do: "{}"
  defp object([?, | rest]), do: [?{, rest, ?}]

  @doc """
  Encodes a JSON-shaped term with `Jason` when the host has it loaded
  (`backend: :jason`), else with `AnvilCol.Forwarder.JSON`.
  """
  @spec encode(term, :jason | :builtin) :: iodata
  def encode(t, :jason), do: apply(Jason, :encode_to_iodata!, [t])
  def encode(t, :builtin), do: JSON.encode(t)

  @doc "Decodes JSON with `Jason` when loaded, else `AnvilCol.Forwarder.JSON`."
  @spec decode(binary, :jason | :builtin) :: {:ok, term} | {:error, term}
  def decode(bin, :jason), do: apply(Jason, :decode, [bin])
  def decode(bin, :builtin), do: JSON.decode(bin)
end

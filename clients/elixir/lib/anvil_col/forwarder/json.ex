defmodule AnvilCol.Forwarder.JSON do
  @moduledoc """
  The small JSON encoder and decoder the forwarder uses when the host has no
  `Jason` (Elixir 1.14 / OTP 25 ship no JSON module).

  `encode/1` takes a JSON-shaped term only: `nil`, booleans, numbers, UTF-8
  binaries, lists, and maps with binary keys (what
  `AnvilCol.Forwarder.Encoder.term/1` makes of any Elixir term). `decode/1`
  reads the collector's answers.
  """

  @doc "Encodes a JSON-shaped term to iodata."
  @spec encode(term) :: iodata
  def encode(nil), do: "null"
  def encode(true), do: "true"
  def encode(false), do: "false"
  def encode(n) when is_integer(n), do: Integer.to_string(n)
  def encode(f) when is_float(f), do: :erlang.float_to_binary(f, [:short])
  def encode(s) when is_binary(s), do: [?", escape(s), ?"]
  def encode([]), do: "[]"
  def encode([h | t]), do: [?[, encode(h) | Enum.map(t, &[?,, encode(&1)])] ++ [?]]

  def encode(m) when is_map(m) do
    case Enum.map(m, fn {k, v} -> [?,, ?", escape(k), ?", ?:, encode(v)] end) do
      [] -> "{}"
      [[?, | first] | rest] -> [?{, first, rest, ?}]
    end
  end

  @doc "Escapes a UTF-8 binary for inclusion between JSON quotes."
  @spec escape(binary) :: iodata
  def escape(s), do: escape(s, s, 0, 0, [])

  defp escape(<<c, rest::binary>>, orig, start, len, acc)
       when c < 0x20 or c == ?" or c == ?\\ do
    escape(rest, orig, start + len + 1, 0, [acc, binary_part(orig, start, len), esc(c)])
  end

  defp escape(<<_, rest::binary>>, orig, start, len, acc),
    do: escape(rest, orig, start, len + 1, acc)

  defp escape(<<>>, orig, 0, _len, []), do: orig
  defp escape(<<>>, orig, start, len, acc), do: [acc, binary_part(orig, start, len)]

  defp esc(?"), do: "\\\""
  defp esc(?\\), do: "\\\\"
  defp esc(?\n), do: "\\n"
  defp esc(?\r), do: "\\r"
  defp esc(?\t), do: "\\t"

  defp esc(c) do
    hex = Integer.to_string(c, 16)
    ["\\u", String.duplicate("0", 4 - byte_size(hex)), hex]
  end

  @doc """
  Decodes a JSON document: objects become maps with binary keys, arrays
  lists, numbers integers or floats. Returns `{:ok, term}` or `{:error, reason}`.
  """
  @spec decode(binary) :: {:ok, term} | {:error, term}
  def decode(bin) when is_binary(bin) do
    {value, rest} = value(skip(bin))

    case skip(rest) do
      "" -> {:ok, value}
      _ -> {:error, :trailing_data}
    end
  catch
    {:json, reason} -> {:error, reason}
  end

  defp skip(<<c, rest::binary>>) when c in [?\s, ?\t, ?\n, ?\r], do: skip(rest)
  defp skip(rest), do: rest

  defp value(<<?{, rest::binary>>), do: object(skip(rest), %{})
  defp value(<<?[, rest::binary>>), do: array(skip(rest), [])
  defp value(<<?", rest::binary>>), do: string(rest, [])
  defp value(<<"true", rest::binary>>), do: {true, rest}
  defp value(<<"false", rest::binary>>), do: {false, rest}
  defp value(<<"null", rest::binary>>), do: {nil, rest}
  defp value(<<c, _::binary>> = bin) when c == ?- or c in ?0..?9, do: number(bin)
  defp value(_), do: throw({:json, :unexpected})

  defp object(<<?}, rest::binary>>, acc), do: {acc, rest}

  defp object(<<?", rest::binary>>, acc) do
    {key, rest} = string(rest, [])

    case skip(rest) do
      <<?:, rest::binary>> ->
        {v, rest} = value(skip(rest))
        acc = Map.put(acc, key, v)

        case skip(rest) do
          <<?,, rest::binary>> -> object(skip(rest), acc)
          <<?}, rest::binary>> -> {acc, rest}
          _ -> throw({:json, :object})
        end

      _ ->
        throw({:json, :object})
    end
  end

  defp object(_, _), do: throw({:json, :object})

  defp array(<<?], rest::binary>>, []), do: {[], rest}

  defp array(bin, acc) do
    {v, rest} = value(bin)

    case skip(rest) do
      <<?,, rest::binary>> -> array(skip(rest), [v | acc])
      <<?], rest::binary>> -> {Enum.reverse([v | acc]), rest}
      _ -> throw({:json, :array})
    end
  end

  defp string(<<?", rest::binary>>, acc), do: {IO.iodata_to_binary(Enum.reverse(acc)), rest}

  defp string(<<?\\, c, rest::binary>>, acc) when c in [?", ?\\, ?/],
    do: string(rest, [c | acc])

  defp string(<<?\\, ?b, rest::binary>>, acc), do: string(rest, [?\b | acc])
  defp string(<<?\\, ?f, rest::binary>>, acc), do: string(rest, [?\f | acc])
  defp string(<<?\\, ?n, rest::binary>>, acc), do: string(rest, [?\n | acc])
  defp string(<<?\\, ?r, rest::binary>>, acc), do: string(rest, [?\r | acc])
  defp string(<<?\\, ?t, rest::binary>>, acc), do: string(rest, [?\t | acc])

  defp string(<<?\\, ?u, a::binary-4, rest::binary>>, acc) do
    case {hex4(a), rest} do
      {hi, <<?\\, ?u, b::binary-4, rest2::binary>>} when hi in 0xD800..0xDBFF ->
        lo = hex4(b)

        if lo in 0xDC00..0xDFFF,
          do: string(rest2, [<<0x10000 + (hi - 0xD800) * 0x400 + (lo - 0xDC00)::utf8>> | acc]),
          else: string(rest, ["\uFFFD" | acc])

      {cp, _} when cp in 0xD800..0xDFFF ->
        string(rest, ["\uFFFD" | acc])

      {cp, _} ->
        string(rest, [<<cp::utf8>> | acc])
    end
  end

  defp string(<<c, rest::binary>>, acc), do: string(rest, [c | acc])
  defp string(<<>>, _), do: throw({:json, :string})

  defp hex4(h) do
    case Integer.parse(h, 16) do
      {n, ""} -> n
      _ -> throw({:json, :escape})
    end
  end

  defp number(bin) do
    {num, rest} = take_number(bin, [])
    text = IO.iodata_to_binary(num)

    parsed =
      if String.contains?(text, [".", "e", "E"]),
        do: Float.parse(text),
        else: Integer.parse(text)

    case parsed do
      {n, ""} -> {n, rest}
      _ -> throw({:json, :number})
    end
  end

  defp take_number(<<c, rest::binary>>, acc) when c in ?0..?9 or c in [?-, ?+, ?., ?e, ?E],
    do: take_number(rest, [acc, c])

  defp take_number(rest, acc), do: {acc, rest}
end

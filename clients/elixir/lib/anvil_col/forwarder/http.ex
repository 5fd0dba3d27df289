defmodule AnvilCol.Forwarder.HTTP do
  @moduledoc """
  The forwarder's HTTP/1.1 connection: one linked process that owns one
  keep-alive connection (`:gen_tcp`, or `:ssl` for https) and runs one POST at
  a time, answering the forwarder with a message, so the forwarder never
  blocks on the network.

  Why not `:httpc`: it resends a `503` with a short `Retry-After` by itself
  (uncounted, unbounded, and lost altogether with a stand-alone profile),
  while the forwarder must own every retry to honour `Retry-After`, count
  retries and keep one request in flight.
  """

  # A connection idle this long is closed rather than reused: below the
  # receiver's idle_timeout (1m), so we do not write into a socket the server
  # is closing.
  @idle_ms 30_000

  @doc "Starts the connection process for `url`, linked to the caller."
  @spec start_link(String.t(), keyword) :: pid
  def start_link(url, opts) do
    uri = URI.parse(url)
    transport = if uri.scheme == "https", do: :ssl, else: :gen_tcp

    state = %{
      transport: transport,
      host: String.to_charlist(uri.host),
      host_header: "#{uri.host}:#{uri.port}",
      port: uri.port,
      path: uri.path || "/",
      ssl: Keyword.get(opts, :ssl, []),
      timeout: Keyword.fetch!(opts, :timeout),
      sock: nil,
      last_used: 0
    }

    spawn_link(fn -> loop(state) end)
  end

  @doc """
  Asks `conn` to POST `body`; the answer comes as
  `{:anvil_http, ref, {:ok, status, headers, body} | {:error, reason}}`, with
  header names in lower case.
  """
  @spec post(pid, [{String.t(), String.t()}], iodata) :: reference
  def post(conn, headers, body) do
    ref = make_ref()
    send(conn, {:post, self(), ref, headers, body})
    ref
  end

  defp loop(s) do
    receive do
      {:post, from, ref, headers, body} ->
        {result, s} =
          try do
            request(s, headers, body)
          catch
            kind, reason -> {{:error, {kind, reason}}, close(s)}
          end

        send(from, {:anvil_http, ref, result})
        loop(s)
    end
  end

  defp request(s, headers, body) do
    deadline = now() + s.timeout
    s = if s.sock && now() - s.last_used > @idle_ms, do: close(s), else: s

    with {:ok, s} <- connect(s, deadline),
         :ok <- send_request(s, headers, body),
         {:ok, status, resp_headers, resp_body} <- read_response(s, deadline) do
      s = %{s | last_used: now()}
      # An answer without length or chunks ended with the connection.
      framed? = Map.has_key?(resp_headers, "content-length") or chunked?(resp_headers)
      s = if resp_headers["connection"] == "close" or not framed?, do: close(s), else: s
      {{:ok, status, resp_headers, resp_body}, s}
    else
      {:error, reason} -> {{:error, reason}, close(s)}
    end
  end

  defp connect(%{sock: sock} = s, _deadline) when sock != nil, do: {:ok, s}

  defp connect(s, deadline) do
    opts = [:binary, active: false, packet: :raw]
    opts = if s.transport == :ssl, do: opts ++ s.ssl, else: opts

    case s.transport.connect(s.host, s.port, opts, max(deadline - now(), 1)) do
      {:ok, sock} -> {:ok, %{s | sock: sock}}
      {:error, reason} -> {:error, {:connect, reason}}
    end
  end

  defp send_request(s, headers, body) do
    head = [
      "POST ",
      s.path,
      " HTTP/1.1\r\nhost: ",
      s.host_header,
      "\r\ncontent-length: ",
      Integer.to_string(IO.iodata_length(body)),
      "\r\n",
      Enum.map(headers, fn {k, v} -> [k, ": ", v, "\r\n"] end),
      "\r\n"
    ]

    case s.transport.send(s.sock, [head, body]) do
      :ok -> :ok
      {:error, reason} -> {:error, {:send, reason}}
    end
  end

  defp read_response(s, deadline) do
    with :ok <- setopts(s, packet: :http_bin),
         {:ok, {:http_response, _version, status, _phrase}} <- recv(s, 0, deadline),
         {:ok, headers} <- read_headers(s, %{}, deadline),
         :ok <- setopts(s, packet: :raw),
         {:ok, body} <- read_body(s, headers, deadline) do
      {:ok, status, headers, body}
    else
      {:ok, other} -> {:error, {:bad_response, other}}
      {:error, reason} -> {:error, reason}
    end
  end

  defp read_headers(s, acc, deadline) do
    case recv(s, 0, deadline) do
      {:ok, {:http_header, _, name, _, value}} ->
        read_headers(s, Map.put(acc, String.downcase(to_string(name)), value), deadline)

      {:ok, :http_eoh} ->
        {:ok, acc}

      {:ok, other} ->
        {:error, {:bad_header, other}}

      error ->
        error
    end
  end

  defp read_body(s, headers, deadline) do
    cond do
      chunked?(headers) ->
        read_chunks(s, [], deadline)

      len = headers["content-length"] ->
        case Integer.parse(len) do
          {0, ""} -> {:ok, ""}
          {n, ""} when n > 0 -> recv(s, n, deadline)
          _ -> {:error, {:bad_content_length, len}}
        end

      true ->
        read_to_close(s, [], deadline)
    end
  end

  defp chunked?(headers),
    do: headers |> Map.get("transfer-encoding", "") |> String.downcase() == "chunked"

  defp read_chunks(s, acc, deadline) do
    with :ok <- setopts(s, packet: :line),
         {:ok, line} <- recv(s, 0, deadline),
         {size, _} <- Integer.parse(String.trim(line), 16),
         :ok <- setopts(s, packet: :raw) do
      if size == 0 do
        # Trailers (none expected) end with an empty line.
        with :ok <- setopts(s, packet: :line), {:ok, _} <- recv(s, 0, deadline) do
          setopts(s, packet: :raw)
          {:ok, IO.iodata_to_binary(Enum.reverse(acc))}
        end
      else
        with {:ok, chunk} <- recv(s, size + 2, deadline) do
          read_chunks(s, [binary_part(chunk, 0, size) | acc], deadline)
        end
      end
    else
      :error -> {:error, :bad_chunk}
      error -> error
    end
  end

  defp read_to_close(s, acc, deadline) do
    case recv(s, 0, deadline) do
      {:ok, data} -> read_to_close(s, [data | acc], deadline)
      {:error, {:recv, :closed}} -> {:ok, IO.iodata_to_binary(Enum.reverse(acc))}
      error -> error
    end
  end

  defp recv(s, n, deadline) do
    case s.transport.recv(s.sock, n, max(deadline - now(), 0)) do
      {:ok, data} -> {:ok, data}
      {:error, reason} -> {:error, {:recv, reason}}
    end
  end

  defp setopts(%{transport: :ssl, sock: sock}, opts), do: :ssl.setopts(sock, opts)
  defp setopts(%{sock: sock}, opts), do: :inet.setopts(sock, opts)

  defp close(%{sock: nil} = s), do: s

  defp close(s) do
    s.transport.close(s.sock)
    %{s | sock: nil}
  end

  defp now, do: System.monotonic_time(:millisecond)
end

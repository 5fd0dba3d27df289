defmodule AnvilCol.Test.Intake do
  @moduledoc false
  # A scripted HTTP/1.1 server on 127.0.0.1 (plain :gen_tcp) playing the
  # anvil receiver. Each request takes the next action of the script (then
  # answers 200 once the script is empty) and is reported to the owner as
  #   {:intake, n, action, %{headers: map, body: decoded_json, events: [...]}}
  # Only a 200 answer accepts events; the owner counts those.
  #
  # Actions:
  #   :ok                            200, every event accepted
  #   {:reject, [index]}             200, the events at those indexes rejected
  #   {:status, code, headers}       that status (e.g. 503 with retry-after)
  #   :close                         read the request, close without answering
  #   :hold                          report {:intake_held, n, pid}, answer 200
  #                                  when the owner sends :release to pid
  #   {:raw, bytes, :keep | :close}  write bytes as the answer, then keep or
  #                                  close the connection
  # A report's conn is the pid serving that connection (one per connection),
  # its path the request's. A request that is not HTTP (a TLS ClientHello) is
  # answered 400 and the connection closed, as Go's net/http does.

  alias AnvilCol.Forwarder.JSON

  defstruct [:port, :listener, :script, :owner]

  def start(script \\ [], port \\ 0) do
    owner = self()
    {:ok, script} = Agent.start(fn -> %{actions: script, n: 0} end)

    # The listener belongs to the accepting process, not to the test
    # process: it outlives the test body, for the last report a supervised
    # forwarder sends while it stops, until stop/1 (on_exit).
    acceptor =
      spawn(fn ->
        {:ok, listener} =
          :gen_tcp.listen(port, [:binary, ip: {127, 0, 0, 1}, active: false, reuseaddr: true])

        send(owner, {:intake_listening, self(), listener})
        accept(listener, script, owner)
      end)

    listener =
      receive do
        {:intake_listening, ^acceptor, listener} -> listener
      end

    {:ok, port} = :inet.port(listener)
    %__MODULE__{port: port, listener: listener, script: script, owner: owner}
  end

  def url(%__MODULE__{port: port}), do: "http://127.0.0.1:#{port}"

  # Appends actions to the script.
  def script(%__MODULE__{script: script}, actions),
    do: Agent.update(script, &%{&1 | actions: &1.actions ++ actions})

  def stop(%__MODULE__{listener: l, script: s}) do
    :gen_tcp.close(l)
    if Process.alive?(s), do: Agent.stop(s)
  end

  defp accept(listener, script, owner) do
    case :gen_tcp.accept(listener) do
      {:ok, sock} ->
        pid = spawn(fn -> serve(sock, script, owner) end)
        :ok = :gen_tcp.controlling_process(sock, pid)
        send(pid, :go)
        accept(listener, script, owner)

      {:error, _} ->
        :ok
    end
  end

  defp serve(sock, script, owner) do
    receive do
      :go -> loop(sock, script, owner)
    end
  end

  defp loop(sock, script, owner) do
    with {:ok, headers} <- read_head(sock),
         {:ok, body} <- read_body(sock, headers) do
      {n, action} =
        Agent.get_and_update(script, fn
          %{actions: [a | rest], n: n} = st -> {{n + 1, a}, %{st | actions: rest, n: n + 1}}
          %{actions: [], n: n} = st -> {{n + 1, :ok}, %{st | n: n + 1}}
        end)

      body = if headers["content-encoding"] == "gzip", do: :zlib.gunzip(body), else: body
      {:ok, doc} = JSON.decode(body)
      events = Map.get(doc, "events", [])

      {path, headers} = Map.pop(headers, :path)

      send(
        owner,
        {:intake, n, action,
         %{headers: headers, body: doc, events: events, conn: self(), path: path}}
      )

      if act(sock, n, action, events, owner) == :continue, do: loop(sock, script, owner)
    end

    :gen_tcp.close(sock)
  end

  defp act(_sock, _n, :close, _events, _owner), do: :closed

  defp act(sock, _n, {:raw, bytes, keep}, _events, _owner) do
    case {:gen_tcp.send(sock, bytes), keep} do
      {:ok, :keep} -> :continue
      _ -> :closed
    end
  end

  defp act(sock, n, :hold, events, owner) do
    send(owner, {:intake_held, n, self()})

    receive do
      :release -> act(sock, n, :ok, events, owner)
    end
  end

  defp act(sock, _n, :ok, events, _owner),
    do: respond(sock, 200, [], answer(length(events), []))

  defp act(sock, _n, {:reject, idx}, events, _owner) do
    errors = Enum.map(idx, &%{"index" => &1, "error" => "metadata.x is bad"})
    respond(sock, 200, [], answer(length(events) - length(idx), errors))
  end

  defp act(sock, _n, {:status, code, headers}, _events, _owner) do
    body = %{"accepted" => 0, "rejected" => 0, "errors" => [], "error" => "scripted #{code}"}
    respond(sock, code, headers, body)
  end

  defp answer(accepted, errors),
    do: %{"accepted" => accepted, "rejected" => length(errors), "errors" => errors}

  defp respond(sock, code, headers, doc) do
    body = IO.iodata_to_binary(JSON.encode(doc))

    head =
      ["HTTP/1.1 #{code} Scripted\r\n", "content-type: application/json\r\n"] ++
        Enum.map(headers, fn {k, v} -> "#{k}: #{v}\r\n" end) ++
        ["content-length: #{byte_size(body)}\r\n\r\n"]

    case :gen_tcp.send(sock, [head, body]) do
      :ok -> :continue
      _ -> :closed
    end
  end

  defp read_head(sock) do
    :ok = :inet.setopts(sock, packet: :http_bin)

    case :gen_tcp.recv(sock, 0) do
      {:ok, {:http_request, :POST, {:abs_path, path}, _version}} ->
        with {:ok, headers} <- read_headers(sock, %{}),
             do: {:ok, Map.put(headers, :path, path)}

      {:ok, {:http_error, _}} ->
        # Not HTTP (e.g. a TLS ClientHello): what Go's net/http, the anvil
        # receiver's server, answers before closing.
        :gen_tcp.send(
          sock,
          "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n" <>
            "connection: close\r\n\r\n400 Bad Request"
        )

        :closed

      _ ->
        :closed
    end
  end

  defp read_headers(sock, acc) do
    case :gen_tcp.recv(sock, 0) do
      {:ok, {:http_header, _, name, _, value}} ->
        read_headers(sock, Map.put(acc, String.downcase(to_string(name)), value))

      {:ok, :http_eoh} ->
        {:ok, acc}

      _ ->
        :closed
    end
  end

  defp read_body(sock, headers) do
    :ok = :inet.setopts(sock, packet: :raw)

    case String.to_integer(Map.get(headers, "content-length", "0")) do
      0 -> {:ok, ""}
      len -> :gen_tcp.recv(sock, len)
    end
  end
end

defmodule AnvilCol.Forwarder do
  @moduledoc """
  Ships Anvil's `:telemetry` events to anvilcol's `anvil` receiver (wire
  protocol v1, `POST /v1/events`), batched, gzipped, retried, never blocking
  the processes that emit them.

  Put it in the host's supervision tree:

      children = [
        {AnvilCol.Forwarder,
         endpoint: "http://localhost:4320",
         resource: %{"deployment.environment" => "production"}}
      ]

  At start it attaches one `:telemetry` handler (`handle_event/4`) to all
  `:events` (default: `catalog/0`, the events of `contract/events.json`).
  The handler runs in the emitting process: it joins a span's start metadata
  into its stop or exception event (`AnvilCol.Forwarder.Spans`), stamps the
  time, adds the current OpenTelemetry span's `traceparent` when
  OpenTelemetry is loaded, and casts the event to the forwarder; the
  forwarder encodes, buffers and sends.

  ## Options

    * `:name` - registered name (`AnvilCol.Forwarder`); forwarders with
      different names run side by side, each with its own handler and HTTP
      client.
    * `:endpoint` - the receiver's base URL, without a path
      (`"http://localhost:4320"`); events go to `<endpoint>/v1/events`.
    * `:token` - bearer token sent as `Authorization: Bearer <token>` (none).
    * `:events` - event names (lists of atoms) to attach to (`catalog/0`);
      `:all` attaches nothing and relies on explicit `handle_event/4` calls
      (from the host's own handler).
    * `:resource` - map merged over `%{"service.name" => "anvil"}` plus, on a
      named node only, `"service.instance.id" => to_string(node())`.
    * `:batch_size` - most events per request (500); a full batch is sent at
      once.
    * `:flush_interval_ms` - a partial batch is sent this long after its first
      event arrived (1000).
    * `:max_buffer` - most events waiting to be sent, besides the batch being
      sent (10_000); beyond it the oldest are dropped and counted.
    * `:gzip` - gzip request bodies above 1 KiB (`true`).
    * `:timeout_ms` - connect and request timeout, and the time `terminate/2`
      spends delivering what is left (10_000).
    * `:ssl` - `:ssl` client options for `https` endpoints (default: verify
      the peer against the OS trust store, check the host name).
    * `:report_interval_ms` - how often the forwarder sends its own counts as
      an `anvil.forwarder.report` event (10_000).
    * `:pollers` - `{module, function, args}` called every
      `:poll_interval_ms`, each in a process of its own, to emit gauges
      (`[]`); see "Periodic measurements".
    * `:poll_interval_ms` - how often each poller is called (30_000); the
      first calls come one interval after the start.
    * `:enabled` - `false`: `start_link/1` returns `:ignore`, nothing is
      attached (`true`).

  ## Delivery

  One request in flight per forwarder. A `2xx` answer that is the receiver's
  (a JSON object with integer `accepted` and `rejected`) resolves the batch
  (the answer's `rejected` events are counted, the first error logged once).
  `429`, `502`, `503` and `504` resend the same batch after `Retry-After`
  (seconds or an HTTP date; exponential backoff without it); network errors
  resend it with exponential backoff from 100 ms, capped at 30 s. Other
  statuses (`400`, `401`, `413`, `500`, ...) drop the batch, counted as
  `rejected` and logged once per status. Configuration errors - a `2xx` that
  is not the receiver's answer, a `404`, `https` against a plain-HTTP port -
  drop the batch too, logged once per cause at error level, and every
  `flush/2` waiting returns `{:error, reason}` at once. Meanwhile new events
  keep being buffered up to `:max_buffer`.

  ## Periodic measurements

  Values that live in Anvil's database rather than in any one request
  (active labelers, pending assignments per queue) are measured by pollers,
  telemetry_poller's model: `pollers: [{Anvil.QueueStats, :emit, []}]`
  makes the forwarder call `apply(Anvil.QueueStats, :emit, [])` every
  `:poll_interval_ms`; the function calls `:telemetry.execute/3` itself
  (e.g. `[:anvil, :queue, :active_labelers]`, `%{count: n}`,
  `%{queue_id: q}`), and the forwarder forwards the event like any other
  (it must be among the `:events` attached). What the function returns is
  ignored, but for `{:error, _}` or `:error`, a failure.

  Each call runs in a task of the forwarder's own `Task.Supervisor`: the
  pollers stop with the forwarder, and a poller that fails or blocks stops
  neither the others nor the forwarder. A failure (raise, throw, exit, an
  error returned) is counted in `polls_failed` and logged once per streak
  (again after a success, or at most once an hour while it keeps failing);
  the poller is called again at the next interval. A poller still running
  at its next interval is not started twice, nor killed: that tick is
  skipped for it, counted in `polls_skipped` and logged once (then at most
  once an hour); the other pollers keep their schedule. See
  `AnvilCol.Forwarder.Pollers`.

  ## Counters (`stats/1`)

    * `sent` - events the collector accepted;
    * `rejected` - events the collector refused for good (named in a `2xx`
      answer, or the whole batch of a non-retryable answer or a
      configuration error);
    * `dropped` - events the forwarder discarded itself: the oldest beyond
      `:max_buffer`, events that could not be encoded, and events
      `handle_event/4` dropped while the forwarder was behind (its mailbox
      holding `:max_buffer` events: events come faster than it encodes them);
    * `retries` - batches sent again;
    * `buffered` - events held now (waiting or being sent);
    * `reports` - `anvil.forwarder.report` events the forwarder enqueued;
    * `measurements_dropped` - non-numeric measurements left out of events;
    * `spans_forgotten` - span starts forgotten unended (more than
      `AnvilCol.Forwarder.Spans.max_open/0` open in one process);
    * `polls` - poller calls that succeeded;
    * `polls_failed` - poller calls that failed (raised, threw, exited,
      returned an error, or were killed);
    * `polls_skipped` - poller calls not started because the previous call
      of that poller was still running.

  Every event received, and every report, is in exactly one of `sent`,
  `rejected`, `dropped`, `buffered`. The `polls` counters are in `stats/1`
  only, not in the `anvil.forwarder.report` event (the contract's).
  """

  use GenServer
  require Logger

  alias AnvilCol.Forwarder.{Encoder, HTTP, Pollers, Spans}

  @otel_key {__MODULE__, :otel}
  @backoff_initial_ms 100
  @backoff_max_ms 30_000
  @gzip_above 1024
  @not_receiver "is `endpoint` the anvil receiver's port (default 4320)?"

  # Built from contract/events.json at compile time (AnvilCol.Contract).
  @external_resource AnvilCol.Contract.path()
  @catalog AnvilCol.Contract.catalog()
  @report_event AnvilCol.Contract.report_event()

  @defaults [
    name: __MODULE__,
    endpoint: "http://localhost:4320",
    token: nil,
    events: @catalog,
    resource: %{},
    batch_size: 500,
    flush_interval_ms: 1000,
    max_buffer: 10_000,
    gzip: true,
    timeout_ms: 10_000,
    ssl: nil,
    report_interval_ms: 10_000,
    pollers: [],
    poll_interval_ms: 30_000,
    enabled: true
  ]

  @typedoc "A forwarder's registered name."
  @type name :: atom

  @doc """
  The events attached by default: every event of `contract/events.json`
  (`AnvilCol.Contract.catalog/0`, read at compile time) as Anvil emits it,
  point events and the start, stop and exception events of spans.
  """
  @spec catalog() :: [[atom, ...]]
  def catalog, do: @catalog

  @doc "Starts a forwarder (see the module doc for the options)."
  @spec start_link(keyword) :: GenServer.on_start()
  def start_link(opts \\ []) do
    opts = Keyword.merge(@defaults, opts)
    validate!(opts)

    if opts[:enabled] do
      # Whether or not the host started them.
      {:ok, _} = Application.ensure_all_started(:inets)
      {:ok, _} = Application.ensure_all_started(:ssl)
      GenServer.start_link(__MODULE__, opts, name: opts[:name])
    else
      :ignore
    end
  end

  @doc false
  def child_spec(opts) do
    timeout = Keyword.get(opts, :timeout_ms, @defaults[:timeout_ms])

    %{
      id: {__MODULE__, Keyword.get(opts, :name, __MODULE__)},
      start: {__MODULE__, :start_link, [opts]},
      # terminate/2 delivers what is left within :timeout_ms.
      shutdown: timeout + 2_000
    }
  end

  @doc """
  The `:telemetry` handler. `config` is the forwarder's name (`nil`: the
  default `AnvilCol.Forwarder`). Runs in the emitting process, never blocks
  and never raises: it joins a span's start metadata into its stop or
  exception event (`AnvilCol.Forwarder.Spans`), stamps `time_unix_nano` and
  casts the event.
  """
  @spec handle_event(list, map, map, name | nil) :: :ok
  def handle_event(event, measurements, metadata, config) do
    name = config || __MODULE__

    case :persistent_term.get({__MODULE__, name}, nil) do
      {counters, overloaded} ->
        # Even while dropping: a span's end must still find its start.
        metadata = Spans.join(name, event, metadata, counters)

        if :atomics.get(overloaded, 1) == 1 do
          # The forwarder is behind (its mailbox holds max_buffer events):
          # drop here, counted, rather than grow its mailbox without bound.
          :counters.add(counters, 1, 1)
        else
          metadata =
            if :persistent_term.get(@otel_key, false),
              do: trace_context(metadata),
              else: metadata

          GenServer.cast(
            name,
            {:event, event, measurements, metadata, System.os_time(:nanosecond)}
          )
        end

      nil ->
        :ok
    end

    :ok
  catch
    _, _ -> :ok
  end

  @doc """
  Sends everything buffered now. Returns `:ok` once the receiver accepted
  all of it, `{:error, reason}` if some of it was refused for good or
  dropped, or if it is still not delivered after `timeout` ms (then it stays
  buffered and is still retried). On a configuration error it returns at
  once: `{:error, {:http, 200 | 404, message}}` (the endpoint is not the
  anvil receiver) or `{:error, {:tls, message}}` (`https` against plain
  HTTP).
  """
  @spec flush(name, timeout) :: :ok | {:error, term}
  def flush(name \\ __MODULE__, timeout \\ 30_000) do
    GenServer.call(name, {:flush, timeout}, timeout + 5_000)
  end

  @doc "The forwarder's counters (see the module doc)."
  @spec stats(name) :: %{
          sent: non_neg_integer,
          dropped: non_neg_integer,
          rejected: non_neg_integer,
          retries: non_neg_integer,
          buffered: non_neg_integer,
          reports: non_neg_integer,
          measurements_dropped: non_neg_integer,
          spans_forgotten: non_neg_integer,
          polls: non_neg_integer,
          polls_failed: non_neg_integer,
          polls_skipped: non_neg_integer
        }
  def stats(name \\ __MODULE__), do: GenServer.call(name, :stats)

  defp validate!(opts) do
    for {key, check} <- [
          name: &is_atom/1,
          endpoint: &(is_binary(&1) and String.starts_with?(&1, ["http://", "https://"])),
          token: &(is_nil(&1) or is_binary(&1)),
          events: &(&1 == :all or (is_list(&1) and Enum.all?(&1, fn e -> is_list(e) end))),
          resource: &is_map/1,
          batch_size: &(is_integer(&1) and &1 > 0),
          flush_interval_ms: &(is_integer(&1) and &1 > 0),
          max_buffer: &(is_integer(&1) and &1 > 0),
          gzip: &is_boolean/1,
          timeout_ms: &(is_integer(&1) and &1 > 0),
          ssl: &(is_nil(&1) or is_list(&1)),
          report_interval_ms: &(is_integer(&1) and &1 > 0),
          poll_interval_ms: &(is_integer(&1) and &1 > 0),
          enabled: &is_boolean/1
        ],
        not check.(opts[key]) do
      raise ArgumentError, "AnvilCol.Forwarder: invalid #{inspect(key)}: #{inspect(opts[key])}"
    end

    if message = Pollers.invalid(opts[:pollers]) do
      raise ArgumentError, "AnvilCol.Forwarder: " <> message
    end

    uri = URI.parse(opts[:endpoint])

    if uri.host in [nil, ""] do
      raise ArgumentError, "AnvilCol.Forwarder: invalid :endpoint: #{inspect(opts[:endpoint])}"
    end

    if uri.path not in [nil, "", "/"] or uri.query != nil do
      raise ArgumentError,
            "AnvilCol.Forwarder: :endpoint #{inspect(opts[:endpoint])} has a path: drop it " <>
              "(#{inspect("#{uri.scheme}://#{uri.host}:#{uri.port}")}); the forwarder posts " <>
              "to <endpoint>/v1/events itself"
    end
  end

  ## Trace context (OpenTelemetry, when loaded)

  defp trace_context(md) when is_map(md) do
    if Map.has_key?(md, :traceparent) or Map.has_key?(md, :trace_id) do
      md
    else
      case apply(:otel_tracer, :current_span_ctx, []) do
        :undefined ->
          md

        ctx ->
          if apply(:otel_span, :is_valid, [ctx]) do
            Map.put(md, :traceparent, traceparent(ctx))
          else
            md
          end
      end
    end
  end

  defp trace_context(md), do: md

  defp traceparent(ctx) do
    trace = apply(:otel_span, :trace_id, [ctx])
    span = apply(:otel_span, :span_id, [ctx])
    flags = apply(:otel_span, :trace_flags, [ctx])
    "00-" <> hex(trace, 32) <> "-" <> hex(span, 16) <> "-" <> hex(flags, 2)
  end

  defp hex(n, width),
    do: n |> Integer.to_string(16) |> String.downcase() |> String.pad_leading(width, "0")

  ## Server

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)
    :persistent_term.put(@otel_key, Code.ensure_loaded?(:otel_tracer))
    name = opts[:name]

    json = if Code.ensure_loaded?(Jason), do: :jason, else: :builtin
    # Counted by the callers: 1, events dropped while the forwarder was
    # behind; 2, spans forgotten (Spans). And the flag that tells the callers
    # the forwarder is behind (see check_mailbox/1).
    counters = :counters.new(2, [:write_concurrency])
    overloaded = :atomics.new(1, [])
    :persistent_term.put({__MODULE__, name}, {counters, overloaded})

    resource = Map.merge(default_resource(node()), opts[:resource])

    url = String.trim_trailing(opts[:endpoint], "/") <> "/v1/events"
    http_opts = http_opts(url, opts)

    state = %{
      name: name,
      counters: counters,
      overloaded: overloaded,
      # Events until the next look at the mailbox.
      check_in: 0,
      conn: HTTP.start_link(url, http_opts),
      json: json,
      url: url,
      http_opts: http_opts,
      headers: headers(opts[:token]),
      prefix:
        IO.iodata_to_binary([
          "{\"resource\":",
          Encoder.encode(Encoder.term(resource), json),
          ",\"events\":["
        ]),
      time_unit: native_unit(),
      batch_size: opts[:batch_size],
      interval: opts[:flush_interval_ms],
      max_buffer: opts[:max_buffer],
      gzip: opts[:gzip],
      timeout: opts[:timeout_ms],
      # Waiting events, {seq, json}, oldest first.
      queue: :queue.new(),
      qlen: 0,
      next_seq: 1,
      # The batch being sent: %{first, last, count, body} (nil: none).
      batch: nil,
      # The request id of the batch in flight (nil while waiting to retry).
      ref: nil,
      # {:backoff | :retry_after, token} while a retry is scheduled.
      retry: nil,
      backoff: @backoff_initial_ms,
      tick: nil,
      due: false,
      waiters: [],
      logged: MapSet.new(),
      last_error: nil,
      handler: nil,
      sent: 0,
      dropped: 0,
      rejected: 0,
      retries: 0,
      measurements_dropped: 0,
      reports: 0,
      report_interval: opts[:report_interval_ms],
      # The counts of the previous report.
      reported: %{},
      # The metadata of the reports: the name as a string.
      forwarder: name |> Atom.to_string() |> String.replace_prefix("Elixir.", ""),
      # The periodic measurements (AnvilCol.Forwarder.Pollers; nil: none).
      pollers: nil
    }

    Process.send_after(self(), :report, state.report_interval)
    state = attach(state, opts[:events])
    # After attaching: what the pollers emit is forwarded from their first call.
    {:ok, %{state | pollers: Pollers.start(name, opts[:pollers], opts[:poll_interval_ms])}}
  end

  @doc false
  # The resource under the :resource option. service.instance.id is the
  # node's name, except on an unnamed node, where every BEAM is
  # nonode@nohost: then it is left out, for the agent's node_identity
  # processor to set (to the agent's node name: one agent per Anvil node).
  @spec default_resource(node) :: %{String.t() => String.t()}
  def default_resource(:nonode@nohost), do: %{"service.name" => "anvil"}

  def default_resource(node),
    do: %{"service.name" => "anvil", "service.instance.id" => Atom.to_string(node)}

  defp http_opts(url, opts) do
    base = [timeout: opts[:timeout_ms]]

    if String.starts_with?(url, "https://") do
      [{:ssl, opts[:ssl] || default_ssl(url)} | base]
    else
      base
    end
  end

  defp default_ssl(url) do
    host = url |> URI.parse() |> Map.fetch!(:host) |> String.to_charlist()

    cacerts =
      try do
        [cacerts: :public_key.cacerts_get()]
      rescue
        # No OS trust store: connections fail (verify_peer without CAs)
        # rather than go unverified; pass :ssl to configure one.
        _ -> []
      end

    [
      verify: :verify_peer,
      server_name_indication: host,
      customize_hostname_check: [match_fun: :public_key.pkix_verify_hostname_match_fun(:https)]
    ] ++ cacerts
  end

  defp headers(nil), do: [{"content-type", "application/json"}]

  defp headers(token),
    do: [{"content-type", "application/json"}, {"authorization", "Bearer " <> token}]

  defp native_unit do
    case System.convert_time_unit(1, :second, :native) do
      1_000_000_000 -> "nanosecond"
      1_000_000 -> "microsecond"
      1_000 -> "millisecond"
      1 -> "second"
      # An unusual native unit: durations are still native; say nothing and
      # let the receiver's native_time_unit decide.
      _ -> "native"
    end
  end

  defp attach(state, :all), do: state

  defp attach(state, events) do
    if Code.ensure_loaded?(:telemetry) do
      id = {__MODULE__, state.name}
      config = if state.name == __MODULE__, do: nil, else: state.name
      _ = apply(:telemetry, :detach, [id])
      :ok = apply(:telemetry, :attach_many, [id, events, &__MODULE__.handle_event/4, config])
      %{state | handler: id}
    else
      Logger.warning("AnvilCol.Forwarder: :telemetry is not loaded; nothing attached")
      state
    end
  end

  @impl true
  def handle_cast({:event, event, measurements, metadata, time}, s) do
    {:noreply,
     s |> check_mailbox() |> enqueue(event, measurements, metadata, time) |> maybe_send()}
  end

  @impl true
  def handle_call(:stats, _from, s), do: {:reply, counts(s), s}

  def handle_call({:flush, timeout}, from, s) do
    target = s.next_seq - 1

    if lowest_outstanding(s) > target do
      {:reply, :ok, s}
    else
      token = make_ref()
      timer = Process.send_after(self(), {:flush_timeout, token}, timeout)
      waiter = %{from: from, target: target, error: nil, token: token, timer: timer}
      # An explicit flush does not wait out a network backoff (Retry-After it does).
      s = %{s | waiters: [waiter | s.waiters]} |> cut_backoff()
      {:noreply, maybe_send(s)}
    end
  end

  @impl true
  # While the flag is up no new event arrives to bring the next look.
  def handle_info(:check_mailbox, s) do
    s = check_mailbox(%{s | check_in: 0})
    if :atomics.get(s.overloaded, 1) == 1, do: Process.send_after(self(), :check_mailbox, 20)
    {:noreply, s}
  end

  def handle_info(:tick, s), do: {:noreply, maybe_send(%{s | tick: nil, due: true})}

  def handle_info(:report, s) do
    Process.send_after(self(), :report, s.report_interval)
    {:noreply, s |> report() |> maybe_send()}
  end

  def handle_info({:retry, token}, %{retry: {_, token}} = s) do
    {:noreply, resend(%{s | retry: nil})}
  end

  def handle_info({:retry, _stale}, s), do: {:noreply, s}

  def handle_info({:anvil_http, ref, result}, %{ref: ref} = s) when ref != nil do
    {:noreply, s |> answered(result) |> maybe_send()}
  end

  def handle_info({:anvil_http, _stale, _}, s), do: {:noreply, s}

  def handle_info({:flush_timeout, token}, s) do
    {mine, rest} = Enum.split_with(s.waiters, &(&1.token == token))

    for w <- mine do
      GenServer.reply(w.from, {:error, w.error || {:timeout, s.last_error}})
    end

    {:noreply, %{s | waiters: rest}}
  end

  # The connection process died (it should not): a new one, and the batch in
  # flight counts as a network error.
  def handle_info({:EXIT, pid, reason}, %{conn: pid} = s) do
    s = %{s | conn: HTTP.start_link(s.url, s.http_opts)}
    s = if s.ref, do: answered(s, {:error, {:connection_process, reason}}), else: s
    {:noreply, maybe_send(s)}
  end

  def handle_info(:poll, %{pollers: %Pollers{} = p} = s),
    do: {:noreply, %{s | pollers: Pollers.tick(p)}}

  # The pollers' task supervisor died (it should not): a new one.
  def handle_info({:EXIT, sup, _reason}, %{pollers: %Pollers{sup: sup} = p} = s),
    do: {:noreply, %{s | pollers: Pollers.restart(p)}}

  # A poller's result, or the end of its process.
  def handle_info(msg, %{pollers: %Pollers{} = p} = s)
      when (tuple_size(msg) == 2 and is_reference(elem(msg, 0))) or
             (tuple_size(msg) == 5 and elem(msg, 0) == :DOWN) do
    case Pollers.handle_message(p, msg) do
      {:ok, p} -> {:noreply, %{s | pollers: p}}
      :error -> {:noreply, s}
    end
  end

  def handle_info(_other, s), do: {:noreply, s}

  @impl true
  def terminate(_reason, s) do
    # No poller emits into a forwarder that no longer reads its mailbox;
    # what they emitted so far is taken from it below.
    Pollers.stop(s.pollers)
    if s.handler, do: apply(:telemetry, :detach, [s.handler])

    s =
      s
      |> take_mailbox()
      |> report()
      |> drain(System.monotonic_time(:millisecond) + s.timeout)

    left = s.qlen + if(s.batch, do: s.batch.count, else: 0)

    if left > 0 do
      Logger.warning(
        "AnvilCol.Forwarder #{inspect(s.name)}: stopping with #{left} events undelivered " <>
          "(last error: #{inspect(s.last_error)})"
      )
    end

    for w <- s.waiters, do: GenServer.reply(w.from, {:error, w.error || :shutdown})
    :ok
  end

  ## Counters

  defp counts(s) do
    %{
      sent: s.sent,
      dropped: s.dropped + :counters.get(s.counters, 1),
      rejected: s.rejected,
      retries: s.retries,
      buffered: held(s),
      reports: s.reports,
      measurements_dropped: s.measurements_dropped,
      spans_forgotten: :counters.get(s.counters, 2)
    }
    |> Map.merge(Pollers.counts(s.pollers))
  end

  defp held(s), do: s.qlen + if(s.batch, do: s.batch.count, else: 0)

  @reported [:sent, :dropped, :rejected, :retries, :measurements_dropped, :spans_forgotten]

  # anvil.forwarder.report into the forwarder's own buffer: the counts since
  # the previous report, and the events held now (before this one).
  defp report(s) do
    now = counts(s)
    deltas = Map.new(@reported, &{&1, now[&1] - Map.get(s.reported, &1, 0)})
    measurements = Map.put(deltas, :buffered, now.buffered)

    %{s | reported: Map.take(now, @reported), reports: s.reports + 1}
    |> enqueue(
      @report_event,
      measurements,
      %{forwarder: s.forwarder},
      System.os_time(:nanosecond)
    )
  end

  ## Buffer

  # Every few events the forwarder looks at its own mailbox (cheap for
  # self, unlike asking from the callers, which waits on this process):
  # holding max_buffer events or more, it raises the flag that makes
  # handle_event/4 drop (counted), and lowers it below half of that.
  defp check_mailbox(%{check_in: n} = s) when n > 0, do: %{s | check_in: n - 1}

  defp check_mailbox(s) do
    {:message_queue_len, len} = Process.info(self(), :message_queue_len)
    flagged = :atomics.get(s.overloaded, 1) == 1

    s =
      cond do
        not flagged and len >= s.max_buffer ->
          :atomics.put(s.overloaded, 1, 1)
          Process.send_after(self(), :check_mailbox, 20)

          log_once(
            s,
            :overload,
            "falling behind (#{len} events in its mailbox): dropping new events"
          )

        flagged and len < div(s.max_buffer, 2) ->
          :atomics.put(s.overloaded, 1, 0)
          s

        true ->
          s
      end

    %{s | check_in: min(256, div(s.max_buffer, 8))}
  end

  defp enqueue(s, event, measurements, metadata, time) do
    json =
      try do
        event
        |> Encoder.event_json(measurements, metadata, time, s.time_unit, s.json)
        |> IO.iodata_to_binary()
      rescue
        e -> {:error, e}
      end

    case json do
      {:error, e} ->
        s = log_once(s, :encode, "cannot encode event #{inspect(event)}: #{Exception.message(e)}")
        %{s | dropped: s.dropped + 1, next_seq: s.next_seq + 1}

      json ->
        s = if s.qlen >= s.max_buffer, do: drop_oldest(s), else: s
        s = count_non_numeric(s, event, measurements)

        %{
          s
          | queue: :queue.in({s.next_seq, json}, s.queue),
            qlen: s.qlen + 1,
            next_seq: s.next_seq + 1
        }
    end
  end

  # The encoder leaves non-numeric measurements out (the receiver would
  # reject the whole event): counted, and the first one logged.
  defp count_non_numeric(s, event, m) when is_map(m) do
    case :maps.fold(fn k, v, acc -> if is_number(v), do: acc, else: [{k, v} | acc] end, [], m) do
      [] ->
        s

      [{k, v} | _] = dropped ->
        s =
          log_once(
            s,
            :measurement,
            "leaving out non-numeric measurement #{inspect(k)} = #{inspect(v, limit: 5)} " <>
              "of #{inspect(event)} (measurements are numbers; metadata takes any term); " <>
              "counted in measurements_dropped"
          )

        %{s | measurements_dropped: s.measurements_dropped + length(dropped)}
    end
  end

  defp count_non_numeric(s, _event, _m), do: s

  defp drop_oldest(s) do
    {{:value, {seq, _}}, queue} = :queue.out(s.queue)

    s =
      log_once(
        s,
        :overflow,
        "buffer full (max_buffer #{s.max_buffer}): dropping the oldest events"
      )

    fail_waiters(
      %{s | queue: queue, qlen: s.qlen - 1, dropped: s.dropped + 1},
      seq,
      {:dropped, :max_buffer}
    )
  end

  defp lowest_outstanding(%{batch: %{first: first}}), do: first

  defp lowest_outstanding(s) do
    case :queue.peek(s.queue) do
      {:value, {seq, _}} -> seq
      :empty -> s.next_seq
    end
  end

  # Waiters that asked for events up to `target` >= seq learn that seq was lost.
  defp fail_waiters(s, seq, error) do
    waiters =
      Enum.map(s.waiters, fn w ->
        if w.target >= seq and w.error == nil, do: %{w | error: error}, else: w
      end)

    %{s | waiters: waiters}
  end

  defp reply_waiters(%{waiters: []} = s), do: s

  defp reply_waiters(s) do
    lowest = lowest_outstanding(s)
    {done, waiting} = Enum.split_with(s.waiters, &(&1.target < lowest))

    for w <- done do
      Process.cancel_timer(w.timer)
      GenServer.reply(w.from, if(w.error, do: {:error, w.error}, else: :ok))
    end

    %{s | waiters: waiting}
  end

  ## Sending

  defp maybe_send(s) do
    cond do
      s.batch != nil or s.qlen == 0 -> reply_waiters(s)
      s.qlen >= s.batch_size or s.due or s.waiters != [] -> send_batch(s)
      s.tick == nil -> %{s | tick: Process.send_after(self(), :tick, s.interval)}
      true -> s
    end
  end

  defp send_batch(s) do
    {items, queue, n} = take(s.queue, s.batch_size, [], 0)
    [{first, _} | _] = items
    {last, _} = List.last(items)

    body =
      IO.iodata_to_binary([s.prefix, Enum.intersperse(Enum.map(items, &elem(&1, 1)), ?,), "]}"])

    if s.tick, do: Process.cancel_timer(s.tick)
    s = %{s | queue: queue, qlen: s.qlen - n, tick: nil, due: false}
    post(%{s | batch: %{first: first, last: last, count: n, body: body}})
  end

  defp take(queue, 0, acc, n), do: {Enum.reverse(acc), queue, n}

  defp take(queue, left, acc, n) do
    case :queue.out(queue) do
      {{:value, item}, queue} -> take(queue, left - 1, [item | acc], n + 1)
      {:empty, queue} -> {Enum.reverse(acc), queue, n}
    end
  end

  defp resend(s), do: post(%{s | retries: s.retries + 1})

  defp post(%{batch: batch} = s) do
    {body, headers} =
      if s.gzip and byte_size(batch.body) > @gzip_above,
        do: {:zlib.gzip(batch.body), [{"content-encoding", "gzip"} | s.headers]},
        else: {batch.body, s.headers}

    %{s | ref: HTTP.post(s.conn, headers, body)}
  end

  defp answered(s, {:ok, status, _headers, body}) when status in 200..299 do
    case decode_answer(s, body) do
      %{"accepted" => a, "rejected" => r} = answer when is_integer(a) and is_integer(r) ->
        accepted(s, answer)

      _ ->
        misconfigured(
          s,
          :not_receiver,
          {:http, status, "answered #{status} but not as the anvil receiver: " <> @not_receiver}
        )
    end
  end

  defp answered(s, {:ok, 404, _headers, _body}),
    do: misconfigured(s, :not_found, {:http, 404, "not found: " <> @not_receiver})

  defp answered(s, {:ok, status, headers, _body}) when status in [429, 502, 503, 504] do
    wait =
      case retry_after(headers) do
        nil -> next_backoff(s)
        ms -> ms
      end

    schedule_retry(
      %{s | last_error: {:http, status}, backoff: grow(s.backoff)},
      :retry_after,
      wait
    )
  end

  defp answered(s, {:ok, status, _headers, body}) do
    count = s.batch.count
    reason = first_error(decode_answer(s, body))

    s =
      log_once(
        s,
        {:status, status},
        "HTTP #{status} from #{s.url}: dropping #{count} events (#{reason})"
      )

    s = fail_waiters(s, s.batch.first, {:http, status, reason})
    done(%{s | rejected: s.rejected + count, last_error: {:http, status, reason}})
  end

  # What a plain-HTTP server's answer to a TLS ClientHello makes of the
  # handshake: https:// against the receiver's plain port.
  defp answered(s, {:error, {:connect, {:tls_alert, {alert, _}}}})
       when alert in [:unexpected_message, :record_overflow] do
    misconfigured(
      s,
      :tls_plain,
      {:tls,
       "TLS handshake failed (#{alert}): the endpoint answers plain HTTP, not TLS; " <>
         "use http:// (the anvil receiver serves plain HTTP unless its tls is configured)"}
    )
  end

  # Any other TLS failure (certificate, protocol version): retried, as it may
  # be a certificate being replaced, but said at error level.
  defp answered(s, {:error, {:connect, {:tls_alert, {alert, description}}}} = error) do
    s =
      log_once(
        s,
        :tls,
        "TLS handshake with #{s.url} failed: #{alert}: #{description}; " <>
          "check the certificates and the :ssl option; retrying, buffering meanwhile",
        :error
      )

    retry_later(s, elem(error, 1))
  end

  defp answered(s, {:error, reason}) do
    s =
      log_once(
        s,
        :network,
        "cannot reach #{s.url}: #{inspect(reason)}; retrying, buffering meanwhile"
      )

    retry_later(s, reason)
  end

  defp retry_later(s, reason) do
    wait = next_backoff(s)
    schedule_retry(%{s | last_error: reason, backoff: grow(s.backoff)}, :backoff, wait)
  end

  # A configuration error (the endpoint is not the anvil receiver, or https
  # against plain HTTP): retrying cannot help. The batch is dropped, counted
  # in rejected, logged once per cause at error level, and every flush/2
  # waiting returns {:error, reason} at once.
  defp misconfigured(s, cause, reason) do
    count = s.batch.count
    message = elem(reason, tuple_size(reason) - 1)

    sep = if cause == :not_receiver, do: " ", else: ": "

    s =
      log_once(
        s,
        {:misconfigured, cause},
        s.url <> sep <> message <> "; dropping #{count} events (counted in rejected)",
        :error
      )

    for w <- s.waiters do
      Process.cancel_timer(w.timer)
      GenServer.reply(w.from, {:error, reason})
    end

    done(%{s | waiters: [], rejected: s.rejected + count, last_error: reason})
  end

  defp accepted(s, answer) do
    count = s.batch.count
    rejected = min(count, int(answer["rejected"], 0))

    s =
      if rejected > 0 do
        log_once(
          s,
          :rejected,
          "the collector rejected #{rejected} of #{count} events; first: " <>
            first_error(answer)
        )
      else
        s
      end

    done(%{s | sent: s.sent + count - rejected, rejected: s.rejected + rejected})
  end

  # The batch is resolved: back to the initial backoff, and a recovered
  # network may be logged again next time it fails.
  defp done(s) do
    %{
      s
      | batch: nil,
        ref: nil,
        backoff: @backoff_initial_ms,
        logged: s.logged |> MapSet.delete(:network) |> MapSet.delete(:tls)
    }
  end

  defp schedule_retry(s, kind, wait) do
    token = make_ref()
    Process.send_after(self(), {:retry, token}, wait)
    %{s | ref: nil, retry: {kind, token}}
  end

  defp cut_backoff(%{retry: {:backoff, _}} = s), do: resend(%{s | retry: nil})
  defp cut_backoff(s), do: s

  # Full jitter between half and all of the current backoff.
  defp next_backoff(s), do: div(s.backoff, 2) + :rand.uniform(max(div(s.backoff, 2), 1))
  defp grow(ms), do: min(ms * 2, @backoff_max_ms)

  defp retry_after(headers) do
    case headers do
      %{"retry-after" => value} ->
        value = String.trim(value)

        case Integer.parse(value) do
          {secs, ""} when secs >= 0 ->
            min(secs * 1000, @backoff_max_ms)

          _ ->
            case :httpd_util.convert_request_date(String.to_charlist(value)) do
              :bad_date ->
                nil

              date ->
                now = :calendar.datetime_to_gregorian_seconds(:calendar.universal_time())
                ms = (:calendar.datetime_to_gregorian_seconds(date) - now) * 1000
                ms |> max(0) |> min(@backoff_max_ms)
            end
        end

      _ ->
        nil
    end
  end

  defp decode_answer(s, body) do
    case Encoder.decode(IO.iodata_to_binary(body), s.json) do
      {:ok, %{} = answer} -> answer
      _ -> %{}
    end
  rescue
    _ -> %{}
  end

  defp first_error(%{"errors" => [%{"index" => i, "error" => e} | _]}), do: "event #{i}: #{e}"
  defp first_error(%{"error" => e}) when is_binary(e), do: e
  defp first_error(_), do: "no reason given"

  defp int(n, _) when is_integer(n), do: n
  defp int(_, default), do: default

  defp log_once(s, kind, message, level \\ :warning) do
    if MapSet.member?(s.logged, kind) do
      s
    else
      Logger.log(level, "AnvilCol.Forwarder #{inspect(s.name)}: " <> message)
      %{s | logged: MapSet.put(s.logged, kind)}
    end
  end

  ## Shutdown: deliver what is left within :timeout_ms.

  defp take_mailbox(s) do
    receive do
      {:"$gen_cast", {:event, event, measurements, metadata, time}} ->
        s |> enqueue(event, measurements, metadata, time) |> take_mailbox()
    after
      0 -> s
    end
  end

  defp drain(s, deadline) do
    left = deadline - System.monotonic_time(:millisecond)
    s = s |> Map.put(:due, true) |> cut_backoff() |> maybe_send()

    cond do
      s.batch == nil and s.qlen == 0 ->
        s

      left <= 0 ->
        s

      s.ref != nil ->
        ref = s.ref

        receive do
          {:anvil_http, ^ref, result} -> s |> answered(result) |> drain(deadline)
        after
          left -> s
        end

      true ->
        {_, token} = s.retry

        receive do
          {:retry, ^token} -> %{s | retry: nil} |> resend() |> drain(deadline)
        after
          left -> s
        end
    end
  end
end

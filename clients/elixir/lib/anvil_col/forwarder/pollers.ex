defmodule AnvilCol.Forwarder.Pollers do
  @moduledoc """
  The forwarder's periodic measurements (the `:pollers` and
  `:poll_interval_ms` options), telemetry_poller's model: every
  `poll_interval_ms` each `{module, function, args}` is called as
  `apply(module, function, args)`, its return value ignored (but for an
  error, below); it is expected to call `:telemetry.execute/3` itself, and
  the forwarder, attached to its events, forwards them like any other.

  This module is the forwarder's bookkeeping; it runs in the forwarder
  process, which owns the timer, receives the calls' results and keeps the
  struct in its state.

    * **Each call in a process of its own**, a task of a `Task.Supervisor`
      linked to the forwarder (`Task.Supervisor.async_nolink/3`, monitored by
      the forwarder): a poller that raises, or blocks, stops neither the
      other pollers nor the forwarder, and the pollers stop with it (the
      supervisor goes down with its parent, killing its tasks; `stop/1` does
      it first in the forwarder's `terminate/2`).
    * **The first calls come one interval after the start**, not at once:
      the forwarder is started before the host's children whose data the
      pollers read (the `Repo`), so it is still running while they deliver
      their last events.
    * **A failure** - the call raises, throws or exits (caught in the task,
      so no crash report either), returns `{:error, _}` or `:error`, or its
      process is killed - is counted in `polls_failed` and logged
      (`Logger.warning`, naming the MFA and the reason) on the **first**
      failure of a streak only; while it keeps failing, a "still failing"
      line at most once an hour; once it succeeds again, one `info` line
      says so and the next failure is logged again. It is called again at
      the next interval.
    * **A slow poller** (its previous call still running when its next
      interval comes) is not started twice: that tick is skipped for it,
      counted in `polls_skipped`, and logged once (then at most once an hour
      while it stays slow; a call that completes without a tick skipped
      ends the streak). The other pollers keep their schedule (one timer,
      each poller looked at on its own). A slow call is **not killed**
      (as telemetry_poller does not): a query slower than the interval
      still returns a right value, and a poller hung for good stays visible
      in the hourly line and in `polls_skipped`.
    * Ticks are on an absolute schedule (start + n x interval); a tick
      missed while the forwarder was busy is not made up.
  """

  require Logger

  @relog_ms 3_600_000

  defstruct [
    :name,
    :sup,
    :interval,
    # The monotonic time (ms) of the next tick.
    :next,
    # index => per-poller state (see new_poller/1)
    pollers: %{},
    # task monitor ref => index
    refs: %{},
    polls: 0,
    failed: 0,
    skipped: 0
  ]

  @type t :: %__MODULE__{}

  @doc "How long a failing or slow poller stays quiet after it was logged, in ms."
  @spec relog_ms() :: pos_integer
  def relog_ms, do: @relog_ms

  @doc """
  Checks the `:pollers` option: `nil` when it is a list of
  `{module, function, args}` whose functions exist, else a message for the
  `ArgumentError`.
  """
  @spec invalid(term) :: String.t() | nil
  def invalid(pollers) when is_list(pollers) do
    if List.improper?(pollers) do
      "invalid :pollers: #{inspect(pollers)}: a list of {module, function, args}"
    else
      Enum.find_value(pollers, &invalid_entry/1)
    end
  end

  def invalid(other),
    do: "invalid :pollers: #{inspect(other)}: a list of {module, function, args}"

  defp invalid_entry({m, f, a} = entry) when is_atom(m) and is_atom(f) and is_list(a) do
    cond do
      List.improper?(a) ->
        "invalid :pollers entry #{inspect(entry)}: args must be a proper list"

      not Code.ensure_loaded?(m) ->
        "invalid :pollers entry #{inspect(entry)}: module #{inspect(m)} is not available"

      not function_exported?(m, f, length(a)) ->
        "invalid :pollers entry #{inspect(entry)}: " <>
          "#{Exception.format_mfa(m, f, length(a))} is not defined or not public"

      true ->
        nil
    end
  end

  defp invalid_entry(entry) do
    "invalid :pollers entry #{inspect(entry)}: expected {module, function, args} " <>
      "(an atom, an atom and a list)"
  end

  @doc """
  Starts the pollers' task supervisor (linked to the calling forwarder) and
  the timer: the first tick is one interval from now. `nil` when there are
  no pollers (nothing started).
  """
  @spec start(atom, [{module, atom, list}], pos_integer) :: t | nil
  def start(_name, [], _interval), do: nil

  def start(name, mfas, interval) do
    {:ok, sup} = Task.Supervisor.start_link()

    pollers =
      mfas
      |> Enum.with_index()
      |> Map.new(fn {mfa, i} -> {i, new_poller(mfa)} end)

    schedule(%__MODULE__{
      name: name,
      sup: sup,
      interval: interval,
      next: now(),
      pollers: pollers
    })
  end

  defp new_poller(mfa) do
    %{
      mfa: mfa,
      # The call running: its monitor ref, and when it started (nil: none).
      ref: nil,
      started: nil,
      # Whether a tick was skipped during the call running.
      run_skipped: false,
      # Failed calls in a row, and when the streak was last logged.
      failures: 0,
      fail_logged: nil,
      # Ticks skipped in a row (calls that overran), and when last logged.
      skips: 0,
      slow_logged: nil
    }
  end

  @doc "The counters for `AnvilCol.Forwarder.stats/1`."
  @spec counts(t | nil) :: %{
          polls: non_neg_integer,
          polls_failed: non_neg_integer,
          polls_skipped: non_neg_integer
        }
  def counts(nil), do: %{polls: 0, polls_failed: 0, polls_skipped: 0}
  def counts(p), do: %{polls: p.polls, polls_failed: p.failed, polls_skipped: p.skipped}

  @doc """
  The tick (the forwarder's `:poll` message): starts every poller not still
  running, skips (counted, logged once) those that are, schedules the next.
  """
  @spec tick(t) :: t
  def tick(p) do
    p = Enum.reduce(Map.keys(p.pollers), p, &tick_one/2)
    schedule(p)
  end

  defp tick_one(i, p) do
    poller = p.pollers[i]
    if poller.ref, do: skip(p, i, poller), else: run(p, i, poller)
  end

  defp run(p, i, %{mfa: {m, f, a}} = poller) do
    task =
      Task.Supervisor.async_nolink(
        p.sup,
        fn ->
          try do
            {:returned, apply(m, f, a)}
          catch
            # The poller's frames only (not this fn's, Task's, proc_lib's).
            kind, reason ->
              stack = Enum.take_while(__STACKTRACE__, &(elem(&1, 0) != __MODULE__))
              {:raised, kind, reason, stack}
          end
        end,
        # Nothing worth finishing: a measurement cut short is just not sent.
        shutdown: :brutal_kill
      )

    poller = %{poller | ref: task.ref, started: now(), run_skipped: false}
    %{p | pollers: Map.put(p.pollers, i, poller), refs: Map.put(p.refs, task.ref, i)}
  end

  defp skip(p, i, poller) do
    now = now()
    running = now - poller.started

    poller =
      cond do
        poller.slow_logged == nil ->
          warn(
            p,
            "poller #{format(poller.mfa)} is still running after #{running} ms at its next " <>
              "interval (poll_interval_ms: #{p.interval}): this tick is skipped for it (it is " <>
              "never run twice at once, nor killed); counted in polls_skipped, logged again " <>
              "at most once an hour while it stays slow"
          )

          %{poller | slow_logged: now}

        now - poller.slow_logged >= @relog_ms ->
          warn(
            p,
            "poller #{format(poller.mfa)} is still slow: #{poller.skips + 1} ticks skipped " <>
              "in a row; the call now running started #{running} ms ago"
          )

          %{poller | slow_logged: now}

        true ->
          poller
      end

    poller = %{poller | skips: poller.skips + 1, run_skipped: true}
    %{p | pollers: Map.put(p.pollers, i, poller), skipped: p.skipped + 1}
  end

  @doc """
  A message for the pollers: a call's result (`{ref, result}`) or its
  process's end (`{:DOWN, ref, ...}`). `{:ok, t}` when it was one, `:error`
  when not.
  """
  @spec handle_message(t | nil, term) :: {:ok, t} | :error
  def handle_message(%__MODULE__{refs: refs} = p, {ref, result})
      when is_map_key(refs, ref) do
    Process.demonitor(ref, [:flush])

    case result do
      {:returned, error} when error == :error or (is_tuple(error) and elem(error, 0) == :error) ->
        {:ok, done(p, ref, {:failed, "returned #{inspect(error)}"})}

      {:returned, _} ->
        {:ok, done(p, ref, :ok)}

      {:raised, kind, reason, stack} ->
        {:ok, done(p, ref, {:failed, Exception.format(kind, reason, stack) |> String.trim()})}
    end
  end

  def handle_message(%__MODULE__{refs: refs} = p, {:DOWN, ref, :process, _pid, reason})
      when is_map_key(refs, ref) do
    # Only an exit signal from outside ends a call this way (the call's own
    # raise, throw and exit are caught in it).
    {:ok, done(p, ref, {:failed, "its process exited: " <> Exception.format_exit(reason)})}
  end

  def handle_message(_p, _msg), do: :error

  defp done(p, ref, outcome) do
    {i, refs} = Map.pop(p.refs, ref)
    poller = %{p.pollers[i] | ref: nil, started: nil}

    # A call that completed with no tick skipped ends a slow streak.
    poller =
      if poller.run_skipped,
        do: poller,
        else: %{poller | skips: 0, slow_logged: nil}

    {p, poller} = outcome(p, poller, outcome)
    %{p | refs: refs, pollers: Map.put(p.pollers, i, poller)}
  end

  defp outcome(p, poller, :ok) do
    if poller.failures > 0 do
      Logger.info(
        "AnvilCol.Forwarder #{inspect(p.name)}: poller #{format(poller.mfa)} succeeded " <>
          "again after #{poller.failures} failed call(s)"
      )
    end

    {%{p | polls: p.polls + 1}, %{poller | failures: 0, fail_logged: nil}}
  end

  defp outcome(p, poller, {:failed, why}) do
    now = now()

    poller =
      cond do
        poller.failures == 0 ->
          warn(
            p,
            "poller #{format(poller.mfa)} failed: #{why}\n(counted in polls_failed; called " <>
              "again every #{p.interval} ms; logged again once it has succeeded in between, " <>
              "or at most once an hour while it keeps failing)"
          )

          %{poller | fail_logged: now}

        now - poller.fail_logged >= @relog_ms ->
          warn(
            p,
            "poller #{format(poller.mfa)} is still failing: #{poller.failures + 1} failed " <>
              "calls in a row; the last: #{why}"
          )

          %{poller | fail_logged: now}

        true ->
          poller
      end

    {%{p | failed: p.failed + 1}, %{poller | failures: poller.failures + 1}}
  end

  @doc """
  The task supervisor died (it should not: its tasks are temporary): its
  tasks died with it (their `:DOWN` messages count them as failures); a new
  one takes the next ticks.
  """
  @spec restart(t) :: t
  def restart(p) do
    {:ok, sup} = Task.Supervisor.start_link()
    %{p | sup: sup}
  end

  @doc """
  Stops the calls running and their supervisor (in the forwarder's
  `terminate/2`, before its last drain, so that no poller emits into a
  forwarder that no longer reads its mailbox).
  """
  @spec stop(t | nil) :: :ok
  def stop(nil), do: :ok

  def stop(p) do
    # The tasks are killed at once (shutdown: :brutal_kill).
    GenServer.stop(p.sup, :shutdown, 5_000)
  catch
    :exit, _ -> :ok
  end

  defp schedule(p) do
    now = now()
    next = p.next + p.interval
    # Behind by a whole interval (the forwarder was busy): no catching up.
    next = if next <= now, do: now + p.interval, else: next
    Process.send_after(self(), :poll, next, abs: true)
    %{p | next: next}
  end

  defp warn(p, message),
    do: Logger.warning("AnvilCol.Forwarder #{inspect(p.name)}: " <> message)

  defp format({m, f, a}), do: Exception.format_mfa(m, f, a)

  defp now, do: System.monotonic_time(:millisecond)
end

defmodule AnvilCol.PollersTest.Pollers do
  @moduledoc false
  # The pollers the tests give the forwarder (called as apply(m, f, a) in a
  # task of its own).

  # What Anvil's would do, from a query.
  def active_labelers(queue_id, count) do
    :telemetry.execute([:anvil, :queue, :active_labelers], %{count: count}, %{queue_id: queue_id})
  end

  # Tells the test it was called.
  def ping(test, tag) do
    send(test, {:polled, tag, self()})
    :ok
  end

  # Fails as slot 1 of ctl says, after telling the test it was called.
  def flaky(test, ctl) do
    send(test, {:polled, :flaky, self()})

    case :atomics.get(ctl, 1) do
      0 ->
        :ok

      1 ->
        raise "queue stats unavailable"

      2 ->
        throw(:no_stats)

      3 ->
        exit(:db_down)

      4 ->
        {:error, :timeout}

      5 ->
        # A linked process (a connection) dies: the call's process with it.
        spawn_link(fn -> exit(:connection_lost) end)
        Process.sleep(:infinity)
    end
  end

  # While slot 3 of ctr is 1, blocks until the test sends :release. Slot 1:
  # calls running now; slot 2: the most seen running at once.
  def slow(test, ctr) do
    running = :atomics.add_get(ctr, 1, 1)
    bump_max(ctr, running)
    send(test, {:slow_started, self()})

    if :atomics.get(ctr, 3) == 1 do
      receive do
        :release -> :ok
      end
    end

    :atomics.sub(ctr, 1, 1)
    :ok
  end

  defp bump_max(ctr, n) do
    seen = :atomics.get(ctr, 2)

    if n > seen and :atomics.compare_exchange(ctr, 2, seen, n) != :ok,
      do: bump_max(ctr, n)
  end
end

defmodule AnvilCol.PollersTest do
  # Not async: :telemetry (the test stand-in) is global.
  use ExUnit.Case, async: false

  import AnvilCol.Test.Helpers
  import ExUnit.CaptureLog

  alias AnvilCol.Forwarder
  alias AnvilCol.Forwarder.Pollers
  alias AnvilCol.PollersTest.Pollers, as: P
  alias AnvilCol.Test.Intake

  setup do
    intake = Intake.start()
    on_exit(fn -> Intake.stop(intake) end)
    name = :"fwd_#{System.unique_integer([:positive])}"
    {:ok, intake: intake, name: name}
  end

  defp start(ctx, opts) do
    opts =
      Keyword.merge(
        [name: ctx.name, endpoint: Intake.url(ctx.intake), events: :all, poll_interval_ms: 20],
        opts
      )

    start_supervised!({Forwarder, opts})
    ctx.name
  end

  # The messages {:polled, tag, pid} received so far, for that tag.
  defp polled(tag, acc \\ 0) do
    receive do
      {:polled, ^tag, _} -> polled(tag, acc + 1)
    after
      0 -> acc
    end
  end

  defp occurrences(log, text), do: length(String.split(log, text)) - 1

  test "a poller's :telemetry event reaches the endpoint, as the contract says", ctx do
    event = [:anvil, :queue, :active_labelers]
    assert event in Forwarder.catalog()

    name =
      start(ctx,
        events: Forwarder.catalog(),
        pollers: [{P, :active_labelers, ["q-1", 3]}],
        flush_interval_ms: 10
      )

    assert_receive {:intake, _, :ok, %{events: [ev | _]}}, 2_000
    assert ev["name"] == ["anvil", "queue", "active_labelers"]
    assert ev["measurements"] == %{"count" => 3}
    assert ev["metadata"] == %{"queue_id" => "q-1"}
    assert :ok = AnvilCol.Contract.check(ev["name"], ev["measurements"], ev["metadata"])

    # And again, every interval.
    wait_until(fn -> Forwarder.stats(name).polls >= 3 end, 2_000, "three polls")
    assert :ok = Forwarder.flush(name)
    {_, reqs} = received()
    events = for {_, r} <- reqs, e <- r.events, not report?(e), do: e
    assert length(events) >= 2
    assert Enum.all?(events, &(&1["name"] == ["anvil", "queue", "active_labelers"]))
    assert %{polls_failed: 0, polls_skipped: 0} = Forwarder.stats(name)
  end

  test "the first call comes one interval after the start, not at once", ctx do
    start(ctx, pollers: [{P, :ping, [self(), :a]}], poll_interval_ms: 150)
    refute_receive {:polled, :a, _}, 100
    assert_receive {:polled, :a, _}, 1_000
  end

  test "a raising poller: logged once, called again each interval; the others and the forwarder go on",
       ctx do
    ctl = :atomics.new(1, [])
    :atomics.put(ctl, 1, 1)

    log =
      capture_log(fn ->
        name =
          start(ctx,
            pollers: [{P, :flaky, [self(), ctl]}, {P, :ping, [self(), :other]}]
          )

        pid = Process.whereis(name)

        for _ <- 1..5, do: assert_receive({:polled, :flaky, _}, 1_000)
        wait_until(fn -> Forwarder.stats(name).polls_failed >= 5 end, 2_000, "5 failures")

        assert polled(:other) >= 3
        assert Process.whereis(name) == pid
        assert %{polls: polls, polls_failed: failed} = Forwarder.stats(name)
        assert polls >= 3 and failed >= 5
      end)

    assert occurrences(log, "failed:") == 1, log
    assert log =~ "[warning]"
    assert log =~ "poller AnvilCol.PollersTest.Pollers.flaky(#PID<"
    assert log =~ "** (RuntimeError) queue stats unavailable"
    assert log =~ "called again every 20 ms"
    refute log =~ "still failing"
  end

  test "raise, throw, exit, an error returned, a killed call: each a failure, logged again after a success",
       ctx do
    ctl = :atomics.new(1, [])
    test = self()

    log =
      capture_log(fn ->
        name = start(ctx, pollers: [{P, :flaky, [test, ctl]}])

        for {mode, i} <- Enum.with_index([1, 2, 3, 4, 5], 1) do
          :atomics.put(ctl, 1, mode)

          wait_until(
            fn -> Forwarder.stats(name).polls_failed >= 2 * i end,
            2_000,
            "failures in mode #{mode}"
          )

          :atomics.put(ctl, 1, 0)
          polls = Forwarder.stats(name).polls
          wait_until(fn -> Forwarder.stats(name).polls > polls end, 2_000, "a success")
        end
      end)

    assert occurrences(log, "failed:") == 5, log
    assert log =~ "failed: ** (RuntimeError) queue stats unavailable"
    assert log =~ "failed: ** (throw) :no_stats"
    assert log =~ "failed: ** (exit) :db_down"
    assert log =~ "failed: returned {:error, :timeout}"
    assert log =~ "failed: its process exited: :connection_lost"
    assert occurrences(log, "succeeded again after") == 5, log
    refute log =~ "still failing"
  end

  test "still failing: said at most once an hour", ctx do
    ctl = :atomics.new(1, [])
    :atomics.put(ctl, 1, 4)

    log =
      capture_log(fn ->
        name = start(ctx, pollers: [{P, :flaky, [self(), ctl]}])
        wait_until(fn -> Forwarder.stats(name).polls_failed >= 2 end, 2_000, "2 failures")

        # An hour passes (for the poller's last log).
        :sys.replace_state(Process.whereis(name), fn s ->
          update_in(s.pollers.pollers[0].fail_logged, &(&1 - Pollers.relog_ms()))
        end)

        failed = Forwarder.stats(name).polls_failed
        wait_until(fn -> Forwarder.stats(name).polls_failed >= failed + 3 end, 2_000, "more")
      end)

    assert occurrences(log, "failed:") == 1, log
    assert occurrences(log, "still failing") == 1, log

    assert log =~
             ~r/is still failing: \d+ failed calls in a row; the last: returned \{:error, :timeout\}/
  end

  test "a slow poller is not started twice; its ticks are skipped, counted, logged once; the others keep their schedule",
       ctx do
    ctr = :atomics.new(3, [])
    :atomics.put(ctr, 3, 1)

    log =
      capture_log(fn ->
        name = start(ctx, pollers: [{P, :slow, [self(), ctr]}, {P, :ping, [self(), :other]}])
        assert_receive {:slow_started, first}, 1_000
        polled(:other)

        wait_until(fn -> Forwarder.stats(name).polls_skipped >= 4 end, 2_000, "4 skipped ticks")
        # The other poller ran meanwhile, at its interval.
        assert polled(:other) >= 3
        refute_received {:slow_started, _}

        # Fast again: the next tick starts it anew.
        :atomics.put(ctr, 3, 0)
        send(first, :release)
        assert_receive {:slow_started, second}, 1_000
        assert second != first
        wait_until(fn -> Forwarder.stats(name).polls >= 3 end, 2_000, "fast calls")
        skipped = Forwarder.stats(name).polls_skipped
        assert_receive {:slow_started, _}, 1_000
        assert_receive {:slow_started, _}, 1_000
        assert Forwarder.stats(name).polls_skipped == skipped
        assert %{polls_failed: 0} = Forwarder.stats(name)
      end)

    assert :atomics.get(ctr, 2) == 1, "ran #{:atomics.get(ctr, 2)} calls at once"
    assert occurrences(log, "is still running after") == 1, log
    assert log =~ "poller AnvilCol.PollersTest.Pollers.slow(#PID<"
    assert log =~ "this tick is skipped for it"
  end

  test "pollers stop with the forwarder", ctx do
    ctr = :atomics.new(3, [])
    :atomics.put(ctr, 3, 1)
    name = start(ctx, pollers: [{P, :slow, [self(), ctr]}, {P, :ping, [self(), :other]}])
    assert_receive {:slow_started, task}, 1_000
    sup = :sys.get_state(name).pollers.sup
    task_ref = Process.monitor(task)
    sup_ref = Process.monitor(sup)

    :ok = stop_supervised({Forwarder, name})
    assert_receive {:DOWN, ^task_ref, :process, _, _}, 1_000
    assert_receive {:DOWN, ^sup_ref, :process, _, _}, 1_000
    polled(:other)
    refute_receive {:polled, :other, _}, 100
  end

  test "pollers stop with a forwarder killed", ctx do
    ctr = :atomics.new(3, [])
    :atomics.put(ctr, 3, 1)

    opts = [
      name: ctx.name,
      endpoint: Intake.url(ctx.intake),
      events: :all,
      poll_interval_ms: 20,
      pollers: [{P, :slow, [self(), ctr]}]
    ]

    pid = start_supervised!({Forwarder, opts}, restart: :temporary)
    assert_receive {:slow_started, task}, 1_000
    task_ref = Process.monitor(task)
    Process.exit(pid, :kill)
    assert_receive {:DOWN, ^task_ref, :process, _, _}, 1_000
  end

  test "without pollers: nothing started, the counters at 0, the existing keys unchanged", ctx do
    name = start(ctx, [])
    assert :sys.get_state(name).pollers == nil
    stats = Forwarder.stats(name)

    assert Map.keys(stats) |> Enum.sort() ==
             Enum.sort(
               ~w(sent dropped rejected retries buffered reports measurements_dropped spans_forgotten
                  polls polls_failed polls_skipped)a
             )

    assert %{polls: 0, polls_failed: 0, polls_skipped: 0} = stats
  end

  describe "options" do
    test "a bad :pollers entry is refused, naming the option and the entry" do
      for {bad, why} <- [
            {:not_a_list, ~r/invalid :pollers: :not_a_list/},
            {{P, :ping, []}, ~r/invalid :pollers: \{/},
            {[{P, :ping}], ~r/invalid :pollers entry \{AnvilCol.PollersTest.Pollers, :ping\}/},
            {[{"P", :ping, []}],
             ~r/invalid :pollers entry .*expected \{module, function, args\}/},
            {[{P, :ping, :args}], ~r/invalid :pollers entry/},
            {[fn -> :ok end], ~r/invalid :pollers entry/},
            {[{P, :ping, [1 | 2]}], ~r/invalid :pollers entry .*proper list/},
            {[{P, :nope, []}],
             ~r/invalid :pollers entry .*AnvilCol.PollersTest.Pollers.nope\/0 is not defined/},
            {[{P, :ping, [1]}], ~r/ping\/1 is not defined/},
            {[{P, :ping, [1, 2]}, {NoSuchModule, :f, []}],
             ~r/module NoSuchModule is not available/}
          ] do
        assert_raise ArgumentError, why, fn ->
          Forwarder.start_link(events: :all, pollers: bad)
        end

        # Also when disabled, as every option.
        assert_raise ArgumentError, why, fn ->
          Forwarder.start_link(enabled: false, pollers: bad)
        end
      end
    end

    test "poll_interval_ms is a positive integer" do
      for bad <- [0, -1, 1.5, "30s", nil] do
        assert_raise ArgumentError, ~r/invalid :poll_interval_ms/, fn ->
          Forwarder.start_link(poll_interval_ms: bad, events: :all)
        end
      end
    end
  end
end

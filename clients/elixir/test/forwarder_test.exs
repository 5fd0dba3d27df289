defmodule AnvilCol.ForwarderTest do
  # Not async: :telemetry (the test stand-in) and the OpenTelemetry switch are global.
  use ExUnit.Case, async: false

  import AnvilCol.Test.Helpers
  import ExUnit.CaptureLog

  alias AnvilCol.Forwarder
  alias AnvilCol.Test.Intake

  setup context do
    intake = Intake.start(Map.get(context, :script, []))
    on_exit(fn -> Intake.stop(intake) end)
    name = :"fwd_#{System.unique_integer([:positive])}"
    {:ok, intake: intake, name: name}
  end

  defp start(ctx, opts \\ []) do
    opts = Keyword.merge([name: ctx.name, endpoint: Intake.url(ctx.intake), events: :all], opts)
    start_supervised!({Forwarder, opts})
    ctx.name
  end

  describe "batching" do
    test "a full batch goes at once, the rest waits for the interval or a flush", ctx do
      name = start(ctx, batch_size: 10, flush_interval_ms: 60_000)
      emit(name, 1..25)

      assert_receive {:intake, 1, :ok, %{events: first}}, 2_000
      assert_receive {:intake, 2, :ok, %{events: second}}, 2_000
      assert Enum.map(first ++ second, & &1["metadata"]["seq"]) == Enum.to_list(1..20)
      wait_until(fn -> Forwarder.stats(name).sent == 20 end, 2_000, "the second answer")
      assert %{buffered: 5, sent: 20} = Forwarder.stats(name)

      assert :ok = Forwarder.flush(name)
      assert_received {:intake, 3, :ok, %{events: third}}
      assert Enum.map(third, & &1["metadata"]["seq"]) == Enum.to_list(21..25)
      assert %{sent: 25, buffered: 0, retries: 0, dropped: 0, rejected: 0} = Forwarder.stats(name)
    end

    test "a partial batch goes flush_interval_ms after its first event", ctx do
      name = start(ctx, flush_interval_ms: 300)
      t0 = System.monotonic_time(:millisecond)
      emit(name, [1])
      assert_receive {:intake, 1, :ok, %{events: [_]}}, 5_000
      elapsed = System.monotonic_time(:millisecond) - t0
      assert elapsed >= 290, "sent after #{elapsed} ms, before the 300 ms interval"
    end

    test "the body is protocol v1: resource merged over the defaults, events as sent", ctx do
      name =
        start(ctx, resource: %{"deployment.environment" => "test", "service.name" => "anvil-web"})

      before = System.os_time(:nanosecond)

      :ok =
        Forwarder.handle_event(
          [:anvil, :label, :submit, :stop],
          %{duration: 1_500},
          %{queue_id: "q-1"},
          name
        )

      assert :ok = Forwarder.flush(name)
      assert_received {:intake, 1, :ok, %{body: body, headers: headers}}

      # The tests run on an unnamed node: no service.instance.id (see "identity").
      assert node() == :nonode@nohost

      assert body["resource"] == %{
               "service.name" => "anvil-web",
               "deployment.environment" => "test"
             }

      assert [ev] = body["events"]
      assert ev["name"] == ["anvil", "label", "submit", "stop"]
      assert ev["measurements"] == %{"duration" => 1_500}
      assert ev["metadata"] == %{"queue_id" => "q-1"}
      assert ev["time_unit"] == "nanosecond"

      assert ev["time_unix_nano"] >= before and
               ev["time_unix_nano"] <= System.os_time(:nanosecond)

      assert headers["content-type"] == "application/json"
      refute Map.has_key?(headers, "authorization")
    end

    test "gzip above 1 KiB only, and never with gzip: false", ctx do
      name = start(ctx)
      emit(name, [1])
      :ok = Forwarder.flush(name)
      assert_received {:intake, 1, :ok, %{headers: small}}
      refute Map.has_key?(small, "content-encoding")

      emit(name, 1..40)
      :ok = Forwarder.flush(name)
      assert_received {:intake, 2, :ok, %{headers: big, events: events}}
      assert big["content-encoding"] == "gzip"
      assert length(events) == 40

      plain = :"#{ctx.name}_plain"

      start_supervised!(
        {Forwarder, name: plain, endpoint: Intake.url(ctx.intake), events: :all, gzip: false}
      )

      emit(plain, 1..40)
      :ok = Forwarder.flush(plain)
      assert_received {:intake, 3, :ok, %{headers: h}}
      refute Map.has_key?(h, "content-encoding")
    end

    test "a token is sent as a bearer", ctx do
      name = start(ctx, token: "s3cret")
      emit(name, [1])
      :ok = Forwarder.flush(name)
      assert_received {:intake, 1, :ok, %{headers: %{"authorization" => "Bearer s3cret"}}}
    end
  end

  describe "delivery" do
    @tag script: [{:status, 503, [{"retry-after", "1"}]}, {:status, 429, [{"retry-after", "1"}]}]
    test "503 and 429 resend the same batch after Retry-After; each event arrives once", ctx do
      name = start(ctx)
      emit(name, 1..5)
      t0 = System.monotonic_time(:millisecond)
      assert :ok = Forwarder.flush(name)
      elapsed = System.monotonic_time(:millisecond) - t0
      {seqs, reqs} = received()
      assert seqs == Enum.to_list(1..5)
      assert [{{:status, 503, _}, r1}, {{:status, 429, _}, r2}, {:ok, r3}] = reqs
      assert r1.events == r2.events and r2.events == r3.events
      assert elapsed >= 1_900, "two Retry-After: 1 waits took #{elapsed} ms"
      assert %{sent: 5, retries: 2, rejected: 0, buffered: 0} = assert_accounted(name, 5)
    end

    @tag script: [:close, :close, :close]
    test "a dropped connection is retried with backoff; nothing lost or duplicated", ctx do
      name = start(ctx)
      emit(name, 1..7)
      assert :ok = Forwarder.flush(name)
      {seqs, reqs} = received()
      assert seqs == Enum.to_list(1..7)
      assert length(reqs) == 4
      assert %{sent: 7, retries: 3} = assert_accounted(name, 7)
    end

    @tag script: [{:status, 400, []}]
    test "400 drops the batch, counted, logged once; flush says so; later batches go", ctx do
      name = start(ctx)

      log =
        capture_log(fn ->
          emit(name, 1..3)
          assert {:error, {:http, 400, "scripted 400"}} = Forwarder.flush(name)
        end)

      assert log =~ "HTTP 400"
      assert log =~ "dropping 3 events"
      assert %{rejected: 3, sent: 0} = assert_accounted(name, 3)
      emit(name, 4..5)
      assert :ok = Forwarder.flush(name)
      assert {[4, 5], _} = received()
      assert %{rejected: 3, sent: 2} = assert_accounted(name, 5)
    end

    @tag script: [{:status, 500, []}]
    test "500 (the collector refused permanently) is not retried", ctx do
      name = start(ctx)
      emit(name, 1..2)
      assert {:error, {:http, 500, _}} = Forwarder.flush(name)
      assert %{rejected: 2, retries: 0} = assert_accounted(name, 2)
    end

    @tag script: [{:reject, [1]}, {:reject, [0]}]
    test "200 with rejected events counts them and logs the first error once", ctx do
      name = start(ctx)

      log =
        capture_log(fn ->
          emit(name, 1..3)
          assert :ok = Forwarder.flush(name)
          emit(name, 4..6)
          assert :ok = Forwarder.flush(name)
        end)

      assert {[1, 3, 5, 6], _} = received()
      assert %{sent: 4, rejected: 2, retries: 0} = assert_accounted(name, 6)
      assert log =~ "rejected 1 of 3 events; first: event 1: metadata.x is bad"
      assert length(String.split(log, "rejected")) == 2, "logged more than once:\n#{log}"
    end

    @tag script: [:hold]
    test "a full buffer drops the oldest events and counts them", ctx do
      name = start(ctx, batch_size: 5, max_buffer: 10)
      emit(name, 1..5)
      assert_receive {:intake_held, 1, conn}, 2_000
      # 20 more while the first batch is in flight: only the newest 10 fit.
      emit(name, 6..25)
      assert %{dropped: 10, buffered: 15} = Forwarder.stats(name)
      send(conn, :release)
      # What was dropped before the flush is not its business: the rest arrives.
      assert :ok = Forwarder.flush(name)
      {seqs, _} = received()
      assert seqs == Enum.to_list(1..5) ++ Enum.to_list(16..25)
      assert %{sent: 15, dropped: 10, buffered: 0} = assert_accounted(name, 25)
    end

    test "a forwarder behind by max_buffer events makes callers drop (counted), then recovers",
         ctx do
      name = start(ctx, max_buffer: 50, batch_size: 1_000, flush_interval_ms: 60_000)
      {overflow, flag} = :persistent_term.get({Forwarder, name})

      capture_log(fn ->
        # A caller emits an order of magnitude faster than the forwarder
        # encodes: its mailbox passes 50 and the callers start dropping.
        emit(name, 1..20_000)
        assert :counters.get(overflow, 1) > 0
        wait_until(fn -> :atomics.get(flag, 1) == 0 end, 5_000, "the flag lowered")
        emit(name, 20_001..20_010)
        assert :ok = Forwarder.flush(name)
      end)

      {seqs, _} = received()
      assert Enum.take(seqs, -10) == Enum.to_list(20_001..20_010)
      assert %{sent: sent, dropped: dropped} = assert_accounted(name, 20_010)
      assert sent == length(seqs) and dropped >= :counters.get(overflow, 1)
    end

    test "while the collector is away it buffers and retries, then delivers all once", ctx do
      {:ok, l} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
      {:ok, port} = :inet.port(l)
      :gen_tcp.close(l)
      name = start(ctx, endpoint: "http://127.0.0.1:#{port}", flush_interval_ms: 50)

      capture_log(fn ->
        emit(name, 1..30)
        wait_until(fn -> Forwarder.stats(name).retries >= 3 end, 10_000, "3 retries")
        emit(name, 31..40)
        assert %{sent: 0, buffered: 40} = Forwarder.stats(name)
        back = Intake.start([], port)
        on_exit(fn -> Intake.stop(back) end)
        assert :ok = Forwarder.flush(name)
      end)

      {seqs, _} = received()
      assert Enum.sort(seqs) == Enum.to_list(1..40)
      assert %{sent: 40, buffered: 0} = assert_accounted(name, 40)
    end

    @tag script: [
           :ok,
           {:status, 503, [{"retry-after", "0"}]},
           :close,
           :ok,
           {:status, 503, [{"retry-after", "0"}]}
         ]
    test "handle_event/4 from many processes at once, through failures: every event once", ctx do
      name = start(ctx, batch_size: 200, flush_interval_ms: 20)

      capture_log(fn ->
        1..50
        |> Enum.map(fn p ->
          Task.async(fn -> emit(name, Enum.map(1..200, &(p * 1000 + &1))) end)
        end)
        |> Task.await_many(10_000)

        assert :ok = Forwarder.flush(name)
      end)

      {seqs, _} = received()
      assert length(seqs) == 10_000
      assert Enum.sort(seqs) == Enum.sort(for p <- 1..50, i <- 1..200, do: p * 1000 + i)
      assert %{sent: 10_000, retries: retries} = assert_accounted(name, 10_000)
      assert retries == 3
    end

    test "flush with nothing buffered returns at once", ctx do
      name = start(ctx)
      assert :ok = Forwarder.flush(name)
      refute_received {:intake, _, _, _}
    end

    test "flush reports a timeout while the collector stays away, and keeps the events", ctx do
      {:ok, l} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
      {:ok, port} = :inet.port(l)
      :gen_tcp.close(l)
      # timeout_ms bounds what terminate/2 spends on the dead endpoint too.
      name = start(ctx, endpoint: "http://127.0.0.1:#{port}", timeout_ms: 500)

      capture_log(fn ->
        emit(name, 1..3)
        assert {:error, {:timeout, {:connect, :econnrefused}}} = Forwarder.flush(name, 300)
      end)

      assert %{buffered: 3, sent: 0} = Forwarder.stats(name)
    end
  end

  describe "the HTTP connection" do
    test "one keep-alive connection carries the batches", ctx do
      name = start(ctx)

      for i <- 1..3 do
        emit(name, [i])
        assert :ok = Forwarder.flush(name)
      end

      {_, reqs} = received()
      assert [conn] = reqs |> Enum.map(fn {_, r} -> r.conn end) |> Enum.uniq()
      assert is_pid(conn)
    end

    @tag script: [
           {:raw,
            chunked([~s({"accepted":1,"re), ~s(jected":1,"errors":[{"index":0,"error":"x"}]})]),
            :keep},
           {:raw,
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 41\r\n\r\n" <>
              ~s({"accepted":2,"rejected":0,"errors":[]}  ), :close},
           {:raw, "HTTP/1.1 200 OK\r\n\r\n" <> ~s({"accepted":2,"rejected":0,"errors":[]}),
            :close}
         ]
    test "chunked answers, connection: close and bodies read to the close", ctx do
      name = start(ctx)

      capture_log(fn ->
        emit(name, 1..2)
        assert :ok = Forwarder.flush(name)
      end)

      assert %{sent: 1, rejected: 1} = Forwarder.stats(name)

      for seqs <- [3..4, 5..6, 7..8] do
        emit(name, seqs)
        assert :ok = Forwarder.flush(name)
      end

      {_, reqs} = received()
      assert length(reqs) == 4
      # The answers that closed were followed by new connections.
      assert reqs |> Enum.map(fn {_, r} -> r.conn end) |> Enum.uniq() |> length() == 3
      assert %{sent: 7, rejected: 1, retries: 0} = assert_accounted(name, 8)
    end
  end

  describe "the emitting process" do
    test "handle_event/4 returns :ok and never raises, even with no forwarder" do
      assert :ok =
               Forwarder.handle_event([:anvil, :queue, :created], %{}, %{}, :no_such_forwarder)

      assert :ok = Forwarder.handle_event([:anvil, :queue, :created], %{}, %{}, nil)
      assert :ok = Forwarder.handle_event(:not_a_list, :bad, :bad, {:bad, :name})
    end

    test "odd terms from the caller reach the collector as JSON", ctx do
      name = start(ctx)

      md = %{
        pid: self(),
        tuple: {1, :a},
        bin: <<255>>,
        nested: %{list: [%{a: 1}]},
        err: %KeyError{key: :k}
      }

      :ok = Forwarder.handle_event([:anvil, :export, :failed], %{rows: 1, bad: :x}, md, name)
      :ok = Forwarder.flush(name)
      assert_received {:intake, 1, :ok, %{events: [ev]}}
      assert ev["metadata"]["pid"] == inspect(self())
      assert ev["metadata"]["tuple"] == [1, "a"]
      assert ev["metadata"]["bin"] == Base.encode64(<<255>>)
      assert ev["metadata"]["nested"] == %{"list" => [%{"a" => 1}]}
      assert ev["metadata"]["err"] == Exception.message(%KeyError{key: :k})
      assert ev["measurements"] == %{"rows" => 1}
    end

    test "the current OpenTelemetry span's traceparent goes into the metadata", ctx do
      name = start(ctx)

      Process.put(
        :fake_otel_span_ctx,
        {:span_ctx, 0x4BF92F3577B34DA6A3CE929D0E0E4736, 0xF067AA0BA902B7, 1}
      )

      emit(name, [1])
      :ok = Forwarder.handle_event([:anvil, :x], %{}, %{traceparent: "00-mine"}, name)
      Process.delete(:fake_otel_span_ctx)
      emit(name, [3])
      :ok = Forwarder.flush(name)
      assert_received {:intake, 1, :ok, %{events: [a, b, c]}}

      assert a["metadata"]["traceparent"] ==
               "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

      assert b["metadata"]["traceparent"] == "00-mine"
      refute Map.has_key?(c["metadata"], "traceparent")
    end
  end

  describe "lifecycle" do
    test "terminate/2 delivers what is buffered, even casts still in the mailbox", ctx do
      name = start(ctx, flush_interval_ms: 60_000)
      emit(name, 1..7)
      :ok = stop_supervised({Forwarder, name})
      {seqs, _} = received()
      assert seqs == Enum.to_list(1..7)
    end

    test "attaches one :telemetry handler to its events, detaches on terminate", ctx do
      name = start(ctx, events: [[:anvil, :queue, :created], [:anvil, :label, :submit, :stop]])
      id = {Forwarder, name}

      assert [%{id: ^id, config: ^name}] =
               Enum.filter(:telemetry.list_handlers([]), &(&1.id == id))

      :telemetry.execute([:anvil, :queue, :created], %{}, %{seq: 1})
      :telemetry.execute([:anvil, :auth, :login_success], %{}, %{seq: 2})
      :telemetry.execute([:anvil, :label, :submit, :stop], %{duration: 5}, %{seq: 3})
      :ok = Forwarder.flush(name)
      assert {[1, 3], _} = received()

      :ok = stop_supervised({Forwarder, name})
      assert Enum.filter(:telemetry.list_handlers([]), &(&1.id == id)) == []
    end

    test "the default name and catalog: config nil reaches AnvilCol.Forwarder", ctx do
      start_supervised!({Forwarder, endpoint: Intake.url(ctx.intake)})

      assert [%{config: nil, events: events}] =
               Enum.filter(:telemetry.list_handlers([]), &(&1.id == {Forwarder, Forwarder}))

      assert events == Forwarder.catalog()
      assert [:anvil, :agreement, :low_score] in events

      :telemetry.execute([:anvil, :agreement, :low_score], %{value: 0.4}, %{
        seq: 1,
        dimension: :bbox
      })

      assert :ok = Forwarder.flush()
      assert {[1], [{:ok, %{events: [ev]}}]} = received()
      assert ev["metadata"]["dimension"] == "bbox"
      assert %{sent: 1} = Forwarder.stats()
    end

    test "two forwarders side by side, each with its own endpoint and handler", ctx do
      other = Intake.start()
      on_exit(fn -> Intake.stop(other) end)
      a = start(ctx, events: Forwarder.catalog())
      b = :"#{ctx.name}_b"
      start_supervised!({Forwarder, name: b, endpoint: Intake.url(other)})
      :telemetry.execute([:anvil, :queue, :created], %{}, %{seq: 1})
      emit(a, [2])
      :ok = Forwarder.flush(a)
      :ok = Forwarder.flush(b)
      assert %{sent: 2} = Forwarder.stats(a)
      assert %{sent: 1} = Forwarder.stats(b)
    end

    test "start_link starts :inets and :ssl when the host has not", ctx do
      :ok = Application.stop(:ssl)
      :ok = Application.stop(:inets)
      name = start(ctx)
      assert Enum.any?(Application.started_applications(), &(elem(&1, 0) == :inets))
      assert Enum.any?(Application.started_applications(), &(elem(&1, 0) == :ssl))
      emit(name, [1])
      assert :ok = Forwarder.flush(name)
    end

    test "bad options are refused with the option named" do
      assert_raise ArgumentError, ~r/:batch_size/, fn -> Forwarder.start_link(batch_size: 0) end

      assert_raise ArgumentError, ~r/:endpoint/, fn ->
        Forwarder.start_link(endpoint: "localhost:4320")
      end
    end

    test "https endpoints verify the peer by default" do
      {:ok, pid} =
        Forwarder.start_link(
          name: :fwd_https,
          endpoint: "https://collector.example:4320",
          events: :all,
          # What terminate/2 spends trying to deliver its last report.
          timeout_ms: 200
        )

      http_opts = :sys.get_state(pid).http_opts
      assert http_opts[:ssl][:verify] == :verify_peer
      assert is_function(http_opts[:ssl][:customize_hostname_check][:match_fun])
      GenServer.stop(pid)
    end
  end
end

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

  describe "configuration errors (the endpoint is not the anvil receiver)" do
    @health ~s({"status":"Server available","upSince":"2026-12-01T10:00:00Z","uptime":"1h"})
    @tag script: [
           {:raw,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: #{byte_size(@health)}\r\n\r\n" <>
              @health, :keep}
         ]
    test "a 200 that is not the receiver's answer: dropped, counted, logged once, flush says why at once",
         ctx do
      name = start(ctx, batch_size: 3)

      log =
        capture_log([level: :error], fn ->
          emit(name, 1..3)
          t0 = System.monotonic_time(:millisecond)
          assert {:error, {:http, 200, why}} = Forwarder.flush(name, 30_000)
          assert System.monotonic_time(:millisecond) - t0 < 5_000

          assert why ==
                   "answered 200 but not as the anvil receiver: is `endpoint` the anvil receiver's port (default 4320)?"

          # The next answer is the receiver's again: delivered.
          emit(name, 4..5)
          assert :ok = Forwarder.flush(name)
        end)

      assert log =~ "[error]"

      assert log =~
               "#{Intake.url(ctx.intake)}/v1/events answered 200 but not as the anvil receiver"

      assert log =~ "dropping 3 events (counted in rejected)"
      assert {[4, 5], _} = received()
      assert %{rejected: 3, sent: 2, retries: 0} = assert_accounted(name, 5)
    end

    @tag script: [{:status, 404, []}, {:status, 404, []}, {:status, 404, []}]
    test "404 names the likely cause; logged once per cause; every batch dropped", ctx do
      name = start(ctx, batch_size: 2)

      log =
        capture_log(fn ->
          emit(name, 1..6)

          assert {:error,
                  {:http, 404,
                   "not found: is `endpoint` the anvil receiver's port (default 4320)?"}} =
                   Forwarder.flush(name)

          wait_until(fn -> Forwarder.stats(name).rejected == 6 end, 5_000, "all three batches")
        end)

      assert length(String.split(log, "not found: is `endpoint`")) == 2, log
      assert %{rejected: 6, sent: 0, buffered: 0} = assert_accounted(name, 6)
    end

    test "an endpoint with a path is refused at start, saying to drop it" do
      error =
        assert_raise ArgumentError, fn ->
          Forwarder.start_link(endpoint: "http://localhost:4320/v1/events", events: :all)
        end

      assert error.message =~ "has a path: drop it"
      assert error.message =~ ~s("http://localhost:4320")
      assert error.message =~ "<endpoint>/v1/events"

      assert_raise ArgumentError, ~r/has a path/, fn ->
        Forwarder.start_link(endpoint: "http://localhost:4320/anvil", events: :all)
      end

      # A trailing slash is no path.
      assert {:ok, pid} =
               Forwarder.start_link(
                 name: :fwd_slash,
                 endpoint: "http://localhost:4320/",
                 events: :all,
                 timeout_ms: 200
               )

      assert :sys.get_state(pid).url == "http://localhost:4320/v1/events"
      GenServer.stop(pid)
    end

    test "https against a plain-HTTP receiver: a TLS error suggesting http://, at once", ctx do
      https = String.replace(Intake.url(ctx.intake), "http://", "https://")

      log =
        capture_log([level: :error], fn ->
          name = start(ctx, endpoint: https)
          emit(name, 1..2)
          t0 = System.monotonic_time(:millisecond)
          assert {:error, {:tls, why}} = Forwarder.flush(name, 30_000)
          assert System.monotonic_time(:millisecond) - t0 < 5_000
          assert why =~ "TLS handshake failed (unexpected_message)"
          assert why =~ "use http://"
          assert %{rejected: 2, retries: 0} = assert_accounted(name, 2)
        end)

      assert log =~ "[error]"
      assert log =~ "TLS handshake failed"
      # The intake saw a request that was not HTTP, and no events.
      refute_received {:intake, _, _, _}
    end
  end

  describe "identity (service.instance.id)" do
    test "an unnamed node sends none, a named node its name" do
      assert Forwarder.default_resource(:nonode@nohost) == %{"service.name" => "anvil"}

      assert Forwarder.default_resource(:"anvil@web-1") == %{
               "service.name" => "anvil",
               "service.instance.id" => "anvil@web-1"
             }
    end

    test "nonode@nohost is never sent; an explicit value always wins", ctx do
      assert node() == :nonode@nohost
      a = start(ctx)
      b = :"#{ctx.name}_b"

      start_supervised!(
        {Forwarder,
         name: b,
         endpoint: Intake.url(ctx.intake),
         events: :all,
         resource: %{"service.instance.id" => "web-1"}},
        id: :b
      )

      emit(a, [1])
      :ok = Forwarder.flush(a)
      assert_received {:intake, _, :ok, %{body: %{"resource" => ra}}}
      assert ra == %{"service.name" => "anvil"}
      emit(b, [2])
      :ok = Forwarder.flush(b)
      assert_received {:intake, _, :ok, %{body: %{"resource" => rb}}}
      assert rb == %{"service.name" => "anvil", "service.instance.id" => "web-1"}
    end
  end

  describe "measurements" do
    test "a non-numeric measurement is left out, counted and logged once", ctx do
      name = start(ctx)

      log =
        capture_log(fn ->
          for _ <- 1..2 do
            Forwarder.handle_event(
              [:anvil, :export, :progress],
              %{rows_processed: 5, pct: "50%", eta: nil},
              %{},
              name
            )
          end

          :ok = Forwarder.flush(name)
        end)

      assert_received {:intake, _, :ok, %{events: [e, _]}}
      assert e["measurements"] == %{"rows_processed" => 5}
      assert %{measurements_dropped: 4} = Forwarder.stats(name)
      assert length(String.split(log, "non-numeric measurement")) == 2, log
      assert log =~ "[:anvil, :export, :progress]"
    end
  end

  describe "anvil.forwarder.report" do
    @keys ~w(buffered dropped measurements_dropped rejected retries sent spans_forgotten)

    test "every report_interval_ms, through the forwarder's own buffer, as the contract says",
         ctx do
      name = start(ctx, report_interval_ms: 50, flush_interval_ms: 10)
      emit(name, 1..3)
      Process.sleep(300)
      :ok = Forwarder.flush(name)
      {seqs, reqs} = received()
      assert seqs == [1, 2, 3]
      reports = reports(reqs)
      assert length(reports) >= 3

      for r <- reports do
        assert r["metadata"] == %{"forwarder" => Atom.to_string(name)}
        assert r["measurements"] |> Map.keys() |> Enum.sort() == @keys
        assert :ok = AnvilCol.Contract.check(r["name"], r["measurements"], r["metadata"])
      end

      assert Enum.sum(Enum.map(reports, & &1["measurements"]["sent"])) >= 3
      assert %{reports: n} = assert_accounted(name, 3)
      assert n >= length(reports)
    end

    test "the default forwarder's report names it without Elixir.", ctx do
      start_supervised!({Forwarder, endpoint: Intake.url(ctx.intake), report_interval_ms: 20})
      Process.sleep(60)
      :ok = Forwarder.flush()
      {_, reqs} = received()
      assert [r | _] = reports(reqs)
      assert r["metadata"]["forwarder"] == "AnvilCol.Forwarder"
    end

    # Every report must arrive for the sums to add up: the 400 and the
    # rejection hit events, not reports.
    @tag script: [
           {:status, 400, []},
           {:reject, [1]},
           {:status, 503, [{"retry-after", "0"}]},
           :close,
           :ok,
           :ok
         ]
    test "the deltas of all reports add up to stats/1 at the last report", ctx do
      name = start(ctx, report_interval_ms: 3_600_000)
      pid = Process.whereis(name)

      capture_log(fn ->
        # 400: three events rejected.
        emit(name, 1..3)
        Forwarder.flush(name)
        send(pid, :report)

        # 66 span starts, never ended: 2 forgotten; 66 measurements left out.
        for i <- 1..(AnvilCol.Forwarder.Spans.max_open() + 2) do
          Forwarder.handle_event(
            [:anvil, :x, :start],
            %{bad: :x},
            %{telemetry_span_context: i},
            name
          )
        end

        # The first report and the starts; the first start rejected.
        Forwarder.flush(name)
        send(pid, :report)
        # The second report and three events, through a 503 and a close.
        emit(name, 4..6)
        Forwarder.flush(name)
        send(pid, :report)
      end)

      # Nothing in flight: the counts stay as they were at the last report.
      at_last_report = Forwarder.stats(name)
      capture_log(fn -> Forwarder.flush(name) end)
      {_, reqs} = received()
      reports = reports(reqs)
      assert length(reports) == 3

      for key <- @keys -- ["buffered"] do
        sum = reports |> Enum.map(& &1["measurements"][key]) |> Enum.sum()
        assert sum == Map.fetch!(at_last_report, String.to_atom(key)), key
      end

      assert %{
               spans_forgotten: 2,
               measurements_dropped: 66,
               retries: 2,
               rejected: 4,
               sent: 70,
               reports: 3
             } = at_last_report

      assert Enum.map(reports, & &1["measurements"]["buffered"]) == [0, 0, 0]
      AnvilCol.Forwarder.Spans.forget(name)
    end

    test "terminate/2 sends a last report before the final drain", ctx do
      name = start(ctx, flush_interval_ms: 60_000)
      emit(name, 1..4)
      :ok = stop_supervised({Forwarder, name})
      {seqs, reqs} = received()
      assert seqs == [1, 2, 3, 4]
      assert [last] = reports(reqs)
      # Counted before the drain: the four events still buffered.
      assert %{"buffered" => 4, "sent" => 0} = last["measurements"]
    end

    test "report_interval_ms is validated" do
      for bad <- [0, -1, 1.5, "10s", nil] do
        assert_raise ArgumentError, ~r/:report_interval_ms/, fn ->
          Forwarder.start_link(report_interval_ms: bad, events: :all)
        end
      end
    end
  end

  describe "enabled: false" do
    test "start_link returns :ignore; nothing attached, nothing sent" do
      assert :ignore = Forwarder.start_link(name: :fwd_off, enabled: false)
      assert {:ok, :undefined} = start_supervised({Forwarder, enabled: false})
      assert Process.whereis(Forwarder) == nil
      assert Process.whereis(:fwd_off) == nil

      refute Enum.any?(:telemetry.list_handlers([]), fn h ->
               h.id in [{Forwarder, Forwarder}, {Forwarder, :fwd_off}]
             end)

      assert :ok = :telemetry.execute([:anvil, :queue, :created], %{}, %{queue_id: "q"})
      assert :ok = Forwarder.handle_event([:anvil, :queue, :created], %{}, %{}, :fwd_off)
    end

    test "options are still validated" do
      assert_raise ArgumentError, ~r/:enabled/, fn -> Forwarder.start_link(enabled: "false") end

      assert_raise ArgumentError, ~r/:batch_size/, fn ->
        Forwarder.start_link(enabled: false, batch_size: 0)
      end
    end
  end
end

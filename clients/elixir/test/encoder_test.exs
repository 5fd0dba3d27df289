defmodule AnvilCol.Forwarder.EncoderTest do
  use ExUnit.Case, async: true

  alias AnvilCol.Forwarder.{Encoder, JSON}

  defp json(term), do: term |> Encoder.term() |> JSON.encode() |> IO.iodata_to_binary()

  defmodule Plain do
    defstruct [:a, b: %{c: :d}]
  end

  describe "term/1 makes any term JSON-shaped" do
    test "scalars" do
      assert Encoder.term(nil) == nil
      assert Encoder.term(true) == true
      assert Encoder.term(false) == false
      assert Encoder.term(:round_robin) == "round_robin"
      assert Encoder.term(MyApp.Queue) == "MyApp.Queue"
      assert Encoder.term(42) == 42
      assert Encoder.term(-1.5) == -1.5
      assert Encoder.term("q-1") == "q-1"
      assert Encoder.term("héllo ✓") == "héllo ✓"
    end

    test "binaries that are not UTF-8 are base64-encoded" do
      assert Encoder.term(<<0xFF, 0xFE, 0x00>>) == Base.encode64(<<0xFF, 0xFE, 0x00>>)
      assert Encoder.term(%{<<0xC3>> => 1}) == %{Base.encode64(<<0xC3>>) => 1}
    end

    test "maps keep their nesting, keys become strings" do
      assert Encoder.term(%{:a => %{"b" => [1, %{c: :d}]}, 7 => 1, {:x, 1} => 2}) ==
               %{"a" => %{"b" => [1, %{"c" => "d"}]}, "7" => 1, "{:x, 1}" => 2}
    end

    test "tuples become lists, keyword lists lists of pairs" do
      assert Encoder.term({:ok, 1, "x"}) == ["ok", 1, "x"]
      assert Encoder.term(a: 1) == [["a", 1]]
      assert Encoder.term([]) == []
    end

    test "structs become maps without __struct__" do
      assert Encoder.term(%Plain{a: 1}) == %{"a" => 1, "b" => %{"c" => "d"}}
      assert Encoder.term(URI.parse("http://h/p")) |> Map.fetch!("host") == "h"
      refute Map.has_key?(Encoder.term(%Plain{}), "__struct__")
    end

    test "exceptions become their message" do
      assert Encoder.term(%RuntimeError{message: "boom"}) == "boom"
      assert Encoder.term(%{error: %ArgumentError{message: "bad"}}) == %{"error" => "bad"}
    end

    test "calendar types become ISO 8601" do
      assert Encoder.term(~U[2026-05-01 12:00:00.130Z]) == "2026-05-01T12:00:00.130Z"
      assert Encoder.term(~D[2026-05-01]) == "2026-05-01"
      assert Encoder.term(~N[2026-05-01 12:00:00]) == "2026-05-01T12:00:00"
      assert Encoder.term(~T[12:00:00]) == "12:00:00"
    end

    test "pids, references, functions, ports, bitstrings and improper lists via inspect/1" do
      pid = self()
      ref = make_ref()
      fun = &String.upcase/1
      [port | _] = Port.list()
      assert Encoder.term(pid) == inspect(pid)
      assert Encoder.term(ref) == inspect(ref)
      assert Encoder.term(fun) == inspect(fun)
      assert Encoder.term(port) == inspect(port)
      assert Encoder.term(<<1::3>>) == inspect(<<1::3>>)
      assert Encoder.term([1 | 2]) == "[1 | 2]"
    end

    test "nesting past the receiver's 8 levels is sent as a string, not rejected" do
      deep = Enum.reduce(1..12, :leaf, fn i, acc -> %{"l#{i}" => acc} end)
      out = Encoder.term(deep)
      # metadata itself is level 1; containers at level 8 and below are strings.
      level7 = Enum.reduce(12..7//-1, out, fn i, acc -> Map.fetch!(acc, "l#{i}") end)
      assert is_map(level7)
      assert is_binary(Map.fetch!(level7, "l6"))
      assert Map.fetch!(level7, "l6") =~ ~s("l5" => %{"l4")
    end
  end

  describe "event/5: protocol v1 event objects" do
    test "name as strings, numeric measurements, metadata, time" do
      ev =
        Encoder.event(
          [:anvil, :label, :submit, :stop],
          %{duration: 30_000_000, monotonic_time: -5, bad: "x"},
          %{queue_id: "q-1", labeler_id: 7, policy: :round_robin},
          1_777_000_000_000_000_000,
          "nanosecond"
        )

      assert ev == %{
               "name" => ["anvil", "label", "submit", "stop"],
               "time_unix_nano" => 1_777_000_000_000_000_000,
               "time_unit" => "nanosecond",
               "measurements" => %{"duration" => 30_000_000, "monotonic_time" => -5},
               "metadata" => %{"queue_id" => "q-1", "labeler_id" => 7, "policy" => "round_robin"}
             }
    end

    test ":telemetry.span/3 exception events carry kind, banner and formatted stacktrace" do
      stack =
        try do
          raise "no labelers available"
        rescue
          _ -> __STACKTRACE__
        end

      ev =
        Encoder.event(
          [:anvil, :assignment, :dispatch, :exception],
          %{duration: 10},
          %{
            kind: :error,
            reason: %RuntimeError{message: "no labelers available"},
            stacktrace: stack,
            policy_type: :priority
          },
          1,
          "nanosecond"
        )

      md = ev["metadata"]
      assert md["kind"] == "error"
      assert md["reason"] == "** (RuntimeError) no labelers available"
      assert md["stacktrace"] == Exception.format_stacktrace(stack)
      assert md["stacktrace"] =~ "encoder_test.exs"
      assert md["policy_type"] == "priority"

      thrown =
        Encoder.event(
          [:anvil, :x, :exception],
          %{},
          %{kind: :throw, reason: {:oops, 1}, stacktrace: []},
          1,
          "ns"
        )

      assert thrown["metadata"]["reason"] == "** (throw) {:oops, 1}"
    end

    test "a non-map metadata is kept under value" do
      assert Encoder.event([:a], %{}, [1, 2], 1, "ns")["metadata"] == %{"value" => [1, 2]}
    end
  end

  describe "JSON" do
    test "encodes every JSON type" do
      assert json(%{"a" => [1, 2.5, nil, true, false, "s"]}) ==
               ~s({"a":[1,2.5,null,true,false,"s"]})

      assert json(%{}) == "{}"
      assert json([]) == "[]"
      assert json(1.0e20) == "1.0e20"
    end

    test "escapes quotes, backslashes and control characters, keeps UTF-8" do
      assert json("a\"b\\c\nd\te\u0001✓") == ~s("a\\"b\\\\c\\nd\\te\\u0001✓")
      assert json(%{"k\"" => 1}) == ~s({"k\\"":1})
    end

    test "what it encodes decodes back" do
      term = %{
        "s" => "x\"\\\n\u0001é✓😀",
        "n" => [-1, 0, 1.5, 1.0e-7],
        "m" => %{"z" => nil, "t" => true},
        "e" => []
      }

      assert {:ok, ^term} = JSON.decode(IO.iodata_to_binary(JSON.encode(term)))
    end

    test "decodes the receiver's answers, escapes included" do
      assert JSON.decode(
               ~s( {"accepted": 41, "rejected": 1, "errors": [{"index": 7, "error": "bad \\u00e9 \\ud83d\\ude00"}]} )
             ) ==
               {:ok,
                %{
                  "accepted" => 41,
                  "rejected" => 1,
                  "errors" => [%{"index" => 7, "error" => "bad é 😀"}]
                }}

      assert {:error, _} = JSON.decode("{\"a\":")
      assert {:error, _} = JSON.decode("[1,]")
      assert {:error, _} = JSON.decode("{} x")
    end
  end
end

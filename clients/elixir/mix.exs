defmodule AnvilCol.Forwarder.MixProject do
  use Mix.Project

  # No dependencies, on purpose: the forwarder must build wherever Anvil does,
  # offline, with OTP alone (:httpc for HTTP, :zlib for gzip, its own JSON).
  def project do
    [
      app: :anvilcol_forwarder,
      version: "0.1.0",
      elixir: "~> 1.14",
      elixirc_paths: elixirc_paths(Mix.env()),
      start_permanent: Mix.env() == :prod,
      deps: [],
      # Optional at runtime, called only when loaded.
      xref: [exclude: [:telemetry, Jason, :otel_tracer, :otel_span]],
      docs: [main: "AnvilCol.Forwarder"]
    ]
  end

  def application do
    [extra_applications: [:logger, :inets, :ssl, :public_key, :crypto]]
  end

  # test/support holds a minimal :telemetry (the hex package is not needed to
  # test the forwarder) and a fake OpenTelemetry span context.
  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]
end

// Records the seed application's metrics and spans with the stock OpenTelemetry JavaScript SDK
// and exports them over OTLP/HTTP (JSON) to the monitor at MONITOR_URL with MONITOR_TOKEN.
import { SpanStatusCode } from "@opentelemetry/api";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { Resource } from "@opentelemetry/resources";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

const base = process.env.MONITOR_URL;
const headers = { Authorization: `Bearer ${process.env.MONITOR_TOKEN}` };
const resource = new Resource({ "service.name": "blipee-os", "service.instance.id": "node-1" });

const reader = new PeriodicExportingMetricReader({
  exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics`, headers }),
  exportIntervalMillis: 3_600_000,
});
const meters = new MeterProvider({ resource, readers: [reader] });
const meter = meters.getMeter("blipee-os");

const executions = meter.createCounter("agent.executions");
const errors = meter.createCounter("agent.errors");
const requests = meter.createCounter("api.requests");
const requestDuration = meter.createHistogram("api.request.duration", { unit: "s" });
const latency = meter.createHistogram("ml.prediction.latency", {
  unit: "s",
  advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10] },
});
const accuracy = meter.createGauge("ml.model.accuracy");

const agent = { agent: "esg-chief-of-staff" };
executions.add(4, { ...agent, status: "success" });
errors.add(1, agent);
requests.add(7, { endpoint: "/api/agents", method: "GET", status: 200 });
requestDuration.record(0.12, { endpoint: "/api/agents", method: "GET" });
latency.record(0.03, { model: "emissions-predictor" });
accuracy.record(0.93, { model: "emissions-predictor" });
await meters.forceFlush(); // the first totals: each series' baseline

errors.add(3, agent);
executions.add(3, { ...agent, status: "error" });
latency.record(0.3, { model: "emissions-predictor" });
await meters.forceFlush();
await meters.shutdown();

const spans = new BasicTracerProvider({ resource });
spans.addSpanProcessor(
  new SimpleSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces`, headers })),
);
const tracer = spans.getTracer("blipee-os");
for (const ok of [true, true, false]) {
  const span = tracer.startSpan("GET /api/agents");
  span.setStatus({ code: ok ? SpanStatusCode.OK : SpanStatusCode.ERROR });
  span.end();
}
await spans.forceFlush();
await spans.shutdown();
console.log("exported");

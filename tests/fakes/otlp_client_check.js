// SPDX-License-Identifier: MIT
// Checks tests/fakes/fake_otlp.py with OpenTelemetry's own OTLP/HTTP JSON log
// exporter for Node.js: three records (one WARN with a step attribute) are
// exported through a SimpleLogRecordProcessor; exits 0 when the export
// succeeded. Usage: node otlp_client_check.js http://127.0.0.1:PORT/v1/logs
'use strict';
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-http');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { Resource } = require('@opentelemetry/resources');
const { SeverityNumber } = require('@opentelemetry/api-logs');

async function main() {
  const exporter = new OTLPLogExporter({ url: process.argv[2] });
  const provider = new LoggerProvider({ resource: new Resource({ 'service.name': 'otlp-client-check' }) });
  provider.addLogRecordProcessor(new BatchLogRecordProcessor(exporter));
  const logger = provider.getLogger('check');
  logger.emit({ body: 'one', severityNumber: SeverityNumber.INFO, severityText: 'INFO' });
  logger.emit({ body: 'two', severityNumber: SeverityNumber.WARN, severityText: 'WARN',
                attributes: { 'cicd.pipeline.task.name': 'stepx' } });
  logger.emit({ body: 'three', severityNumber: SeverityNumber.INFO, severityText: 'INFO' });
  await provider.forceFlush();
  await provider.shutdown();
}
main().catch((e) => { console.error(e); process.exit(1); });

import { App } from 'cdktf';
import { OverlappingTenantsStack } from './stack';

const app = new App();
// Gateway metrics open to 10.0.8.0/24, the Prometheus servers' subnet: `npm run emulate` then
// scrapes the members from a monitoring host there (README, "Prometheus in the emulation").
new OverlappingTenantsStack(app, 'overlapping-tenants', { gateway: { metricsSources: ['10.0.8.0/24'] } });
app.synth();

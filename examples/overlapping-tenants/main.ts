import { App } from 'cdktf';
import { OverlappingTenantsStack } from './stack';

const app = new App();
new OverlappingTenantsStack(app, 'overlapping-tenants');
app.synth();

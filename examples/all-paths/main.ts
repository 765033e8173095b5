import { App } from 'cdktf';
import { AllPathsStack } from './stack';

// No outdir here: App takes CDKTF_OUTDIR (cdktf synth sets it), else cdktf.out.
const app = new App();
new AllPathsStack(app, 'all-paths');
app.synth();

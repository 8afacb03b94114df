// In the repository, the CLIs and scripts run the TypeScript sources: tsx
// compiles them, and the `peerway-source` export condition makes
// `@peerway/*` imports resolve to each package's src/ rather than its built
// dist/ (which exists only after `npm run build`). Published packages have
// no src/, and their bins never load this file.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

const addCondition = `export async function resolve(specifier, context, next) {
  return next(specifier, { ...context, conditions: [...context.conditions, 'peerway-source'] });
}`;
register(`data:text/javascript,${encodeURIComponent(addCondition)}`);
registerTsx();

/**
 * Deployments: create or update one from a spec (YAML or JSON; `?dryRun=1`
 * answers with the plan only, like `nomad job plan`), list the caller's,
 * show one with its replicas and events, delete one. Only the owner sees
 * or changes a deployment: anyone else gets 404, as if it did not exist.
 *
 * A spec whose replicas fit on no node is still accepted (201), as Nomad
 * accepts a job it cannot place yet: those replicas stay `pending`, the
 * answer's `pending` says why on each node, and they are placed when a
 * node with room appears.
 */
import express, { type Request } from 'express';
import {
  MAX_DEPLOYMENT_YAML_BYTES,
  PeerwayError,
  parseDeploymentSpec,
  parseDeploymentYaml,
  type DeploymentSpec,
  type SpecError,
} from '@peerway/protocol';
import type { Deployments } from '../../cluster/deployments';
import { needUser } from '../caller';
import { route } from '../errors';
import type { RouteModule } from '../route-module';

/** Content types read as YAML (JSON is YAML too, so any of them may hold JSON). */
const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'];

/** A spec that does not parse: 400 with every problem at its field's path. */
class SpecInvalidError extends PeerwayError {
  constructor(readonly errors: SpecError[]) {
    super(
      'bad_request',
      `the deployment spec has ${errors.length === 1 ? 'a problem' : `${errors.length} problems`}: ${errors
        .slice(0, 3)
        .map((e) => (e.path ? `${e.path}: ${e.message}` : e.message))
        .join('; ')}${errors.length > 3 ? '; …' : ''}`,
    );
  }
}

/** The spec in the request body, parsed and checked. */
function specOf(req: Request): DeploymentSpec {
  const raw: unknown = req.body;
  let r;
  if (typeof raw === 'string') r = parseDeploymentYaml(raw);
  else if (raw && typeof raw === 'object' && Object.keys(raw).length > 0)
    r = parseDeploymentSpec(raw);
  else
    throw new SpecInvalidError([
      {
        path: '',
        message:
          'no spec in the body: send it as JSON (content-type: application/json) or YAML (content-type: application/yaml)',
      },
    ]);
  if (!r.ok) throw new SpecInvalidError(r.errors);
  return r.spec;
}

const isDryRun = (req: Request) => ['1', 'true', 'yes'].includes(String(req.query.dryRun ?? ''));

/** The deployment routes. */
export function deploymentRoutes(deps: {
  deployments: Pick<Deployments, 'apply' | 'list' | 'get' | 'remove'>;
}): RouteModule {
  const { deployments } = deps;
  const yaml = express.text({ type: YAML_TYPES, limit: MAX_DEPLOYMENT_YAML_BYTES });
  return (r) => {
    r.post(
      '/api/deployments',
      yaml,
      route(async (req, res) => {
        const user = needUser(req);
        let spec: DeploymentSpec;
        try {
          spec = specOf(req);
        } catch (err) {
          if (!(err instanceof SpecInvalidError)) throw err;
          res.status(400).json({
            error: { code: err.code, message: err.message },
            errors: err.errors,
          });
          return;
        }
        const dryRun = isDryRun(req);
        const result = await deployments.apply(user, spec, dryRun);
        const warnings = result.pending
          ? [
              `${result.pending.lines[0] ?? `${result.pending.replicas} replicas fit on no node`} ` +
                (dryRun
                  ? 'They would stay pending until a node with room appears.'
                  : 'They stay pending and are placed when a node with room appears.'),
            ]
          : [];
        res.status(dryRun ? 200 : result.created ? 201 : 200).json({ ...result, warnings });
      }),
    );
    r.get(
      '/api/deployments',
      route(async (req, res) => {
        res.json({ deployments: await deployments.list(needUser(req).id) });
      }),
    );
    r.get(
      '/api/deployments/:name',
      route(async (req, res) => {
        const name = String(req.params.name);
        const d = await deployments.get(needUser(req).id, name);
        if (!d) throw new PeerwayError('not_found', `you have no deployment ${name}`);
        res.json(d);
      }),
    );
    r.delete(
      '/api/deployments/:name',
      route(async (req, res) => {
        const name = String(req.params.name);
        if (!(await deployments.remove(needUser(req).id, name)))
          throw new PeerwayError('not_found', `you have no deployment ${name}`);
        res.json({ ok: true, deleted: name });
      }),
    );
  };
}

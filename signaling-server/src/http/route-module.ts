/** The shape of a route module (./routes/*, and a capability's own, e.g. deployments, jobs). */
import type { IRouter } from 'express';

/**
 * Registers a module's routes on the app itself. Not a `Router` of its
 * own: a Router answers an OPTIONS request for any of its paths with an
 * automatic `Allow` reply, which would get ahead of the API's JSON 404.
 */
export type RouteModule = (app: IRouter) => void;

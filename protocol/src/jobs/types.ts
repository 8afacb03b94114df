/** The connectors a job can name (its `type`); another `type` is a 400. */
export const JOB_TYPES = ['http', 'container', 'comfyui', 'simulation'] as const;
export type JobType = (typeof JOB_TYPES)[number];

/** A scenario the admin API cannot run: answered with `status` and `{ error: { code, message } }`. */
export class ScenarioError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

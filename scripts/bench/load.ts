import autocannon from "autocannon";

export interface LoadResult {
  requests: number;
  seconds: number;
  /** Answers per second (every status; see non2xx). */
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  bytesPerAnswer: number;
}

export interface LoadOptions {
  url: string;
  connections: number;
  seconds: number;
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  /** A new body (and extra headers) for every request, e.g. a unique FHIR service and Idempotency-Key each. */
  next?: () => { body: string; headers?: Record<string, string> };
}

/** autocannon at a fixed number of connections for a fixed time. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { next } = options;
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.seconds,
    method: options.method ?? "GET",
    headers: options.headers ?? {},
    ...(next
      ? {
          requests: [
            {
              setupRequest: (request: autocannon.Request) => {
                const { body, headers } = next();
                return { ...request, body, headers: { ...request.headers, ...headers } };
              },
            },
          ],
        }
      : {}),
  });
  const requests = result.requests.total;
  return {
    requests,
    seconds: result.duration,
    perSecond: requests / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    bytesPerAnswer: requests > 0 ? result.throughput.total / requests : 0,
  };
}

/** Latency percentile of a list of samples (ms). */
export function percentile(samples: number[], fraction: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

/** Log of the requests the emulator served (admin API excluded), for tests that assert on traffic. */

export interface RequestLogEntry {
  seq: number;
  method: string;
  host: string;
  path: string;
  status: number;
}

/** One Azure RBAC decision: which principal needed which control-plane action or data action where. */
export interface AuthorizationCheck {
  principalId: string;
  /** `action` (ARM) or `dataAction` (Key Vault data plane). */
  kind: "action" | "dataAction";
  permission: string;
  scope: string;
  granted: boolean;
}

export class RequestLog {
  private entries: RequestLogEntry[] = [];
  private nextSeq = 1;
  private checks: AuthorizationCheck[] = [];

  /** Kept so tests can see exactly which permissions a workload needed (`GET /_sandbox/authorization-checks`). */
  recordCheck(check: AuthorizationCheck): void {
    this.checks.push(check);
  }

  authorizationChecks(): AuthorizationCheck[] {
    return [...this.checks];
  }

  record(entry: Omit<RequestLogEntry, "seq">): void {
    this.entries.push({ seq: this.nextSeq++, ...entry });
  }

  since(seq = 0): RequestLogEntry[] {
    return this.entries.filter((entry) => entry.seq > seq);
  }

  clear(): void {
    this.entries = [];
    this.checks = [];
    this.nextSeq = 1;
  }
}

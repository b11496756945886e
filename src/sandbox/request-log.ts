/** Log of the requests the emulator served (admin API excluded), for tests that assert on traffic. */

export interface RequestLogEntry {
  seq: number;
  method: string;
  host: string;
  path: string;
  status: number;
}

export class RequestLog {
  private entries: RequestLogEntry[] = [];
  private nextSeq = 1;

  record(entry: Omit<RequestLogEntry, "seq">): void {
    this.entries.push({ seq: this.nextSeq++, ...entry });
  }

  since(seq = 0): RequestLogEntry[] {
    return this.entries.filter((entry) => entry.seq > seq);
  }

  clear(): void {
    this.entries = [];
    this.nextSeq = 1;
  }
}

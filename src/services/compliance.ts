import { filterReport, scopeReport, type ReportFilters } from "../domain/compliance/report.js";
import { NotFoundError } from "../errors.js";
import type { JobStore } from "../job-store/job-store.js";
import type { ComplianceReport } from "../schemas/compliance.js";
import type { Principal } from "../security/principal.js";

export interface ComplianceService {
  /** The latest finished scan's report as the caller may see it (its allow-list), filtered; NotFound before the first scan. */
  report(principal: Principal, filters: ReportFilters): Promise<ComplianceReport>;
}

/** `GET /v1/compliance`: one GET of the stored report (gzipped JSON), then the pure scoping and filters of domain/compliance. */
export function createComplianceService({ store, withRedis }: { store: Pick<JobStore, "compliance">; withRedis<T>(work: () => Promise<T>): Promise<T> }): ComplianceService {
  return {
    async report(principal, filters) {
      const latest = await withRedis(() => store.compliance.latest());
      if (!latest) throw new NotFoundError("A compliance report (no scan has finished yet: POST /v1/compliance-scans)");
      return filterReport(scopeReport(latest, principal.subscriptions), filters);
    },
  };
}

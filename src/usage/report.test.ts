import { describe, expect, it } from "vitest";
import { ProxyError } from "../errors";
import { inlineParams, parseReportQuery, usageQuery } from "./report";

const NOW = Date.UTC(2025, 5, 15, 13, 45, 30, 250);

function refusal(query: Parameters<typeof parseReportQuery>[0]): ProxyError {
  try {
    parseReportQuery(query, NOW);
  } catch (error) {
    expect(error).toBeInstanceOf(ProxyError);
    return error as ProxyError;
  }
  throw new Error(`accepted ${JSON.stringify(query)}`);
}

describe("parseReportQuery", () => {
  it("defaults to today so far (UTC), grouped by client", () => {
    expect(parseReportQuery({}, NOW)).toEqual({
      from: "2025-06-15T00:00:00.000Z",
      to: "2025-06-15T13:45:30.250Z",
      groupBy: "client",
    });
  });

  it("treats empty parameters as absent", () => {
    expect(parseReportQuery({ from: "", to: " ", group_by: "" }, new Date(NOW))).toEqual(parseReportQuery({}, NOW));
  });

  it("reads days, a day as `to` including that whole day", () => {
    expect(parseReportQuery({ from: "2025-06-01", to: "2025-06-01", group_by: "day" }, NOW)).toEqual({
      from: "2025-06-01T00:00:00.000Z",
      to: "2025-06-02T00:00:00.000Z",
      groupBy: "day",
    });
  });

  it("reads ISO datetimes with a zone, an offset or none (UTC)", () => {
    expect(parseReportQuery({ from: "2025-06-10T08:00:00Z", to: "2025-06-12T10:30:00.5+02:00" }, NOW)).toEqual({
      from: "2025-06-10T08:00:00.000Z",
      to: "2025-06-12T08:30:00.500Z",
      groupBy: "client",
    });
    expect(parseReportQuery({ from: "2025-06-10T08:00", group_by: "model" }, NOW)).toEqual({
      from: "2025-06-10T08:00:00.000Z",
      to: "2025-06-15T13:45:30.250Z",
      groupBy: "model",
    });
  });

  it("accepts a period of exactly 366 days", () => {
    expect(parseReportQuery({ from: "2024-01-01", to: "2024-12-31" }, NOW).to).toBe("2025-01-01T00:00:00.000Z");
  });

  it.each([
    ["from", { from: "yesterday" }],
    ["from", { from: "2025-6-1" }],
    ["from", { from: "2025-02-30" }],
    ["from", { from: "2025-13-01" }],
    ["from", { from: "1735689600000" }],
    ["to", { to: "2025-06-15 12:00" }],
    ["to", { to: "2025-06-15T12:00:00+0200" }],
    ["to", { to: "2025-06-15T25:00Z" }],
  ])("refuses an unreadable %s with 400 naming it", (param, query) => {
    const error = refusal(query);
    expect(error).toMatchObject({ status: 400, type: "invalid_request_error", code: "invalid_parameter", param });
    expect(error.message).toMatch(new RegExp(`^${param} must be a day \\(YYYY-MM-DD\\) or an ISO datetime \\(got "`));
  });

  it("refuses an unknown group_by", () => {
    expect(refusal({ group_by: "route" })).toMatchObject({
      status: 400,
      param: "group_by",
      message: 'group_by must be client, model, day or upstream (got "route")',
    });
  });

  it.each([
    ["from after to", { from: "2025-06-10", to: "2025-06-01" }],
    ["from equal to to", { from: "2025-06-10T00:00:00Z", to: "2025-06-10T00:00:00Z" }],
    ["from in the future", { from: "2025-06-16" }],
  ])("refuses %s", (_, query) => {
    expect(refusal(query)).toMatchObject({
      status: 400,
      param: "from",
      message: expect.stringMatching(/^from must be before to/),
    });
  });

  it("refuses a period longer than 366 days", () => {
    expect(refusal({ from: "2024-01-01", to: "2025-01-01" })).toMatchObject({
      status: 400,
      param: "from",
      message: "from and to must be at most 366 days apart",
    });
  });
});

describe("usageQuery", () => {
  it("binds the period in milliseconds and groups by the chosen column", () => {
    const query = parseReportQuery({ from: "2025-06-01", to: "2025-06-01", group_by: "model" }, NOW);
    const { sql, params } = usageQuery(query);
    expect(params).toEqual([Date.UTC(2025, 5, 1), Date.UTC(2025, 5, 2)]);
    expect(sql).toContain("SELECT COALESCE(model, '(none)') AS key,");
    expect(usageQuery({ ...query, groupBy: "client" }).sql).toContain("SELECT client AS key,");
    expect(usageQuery({ ...query, groupBy: "day" }).sql).toContain("SELECT day AS key,");
  });
});

describe("inlineParams", () => {
  it("writes numbers and ISO strings in place of numbered parameters", () => {
    expect(inlineParams("SELECT ?1, ?2, ?1, ?10", [1, "2025-06-01T00:00:00.000Z", 3, 4, 5, 6, 7, 8, 9, 10])).toBe(
      "SELECT 1, '2025-06-01T00:00:00.000Z', 1, 10",
    );
  });

  it("writes the report's query as runnable SQL without placeholders", () => {
    const { sql, params } = usageQuery(parseReportQuery({ from: "2025-06-01" }, NOW));
    const inlined = inlineParams(sql, params);
    expect(inlined).toContain(`WHERE ts >= ${Date.UTC(2025, 5, 1)} AND ts < ${NOW}`);
    expect(inlined).not.toMatch(/\?\d/);
  });

  it.each([
    ["a string with a quote", ["x' OR 1=1 --"]],
    ["a string with a space", ["2025-06-01 00:00"]],
    ["a non-finite number", [Number.POSITIVE_INFINITY]],
    ["NaN", [Number.NaN]],
  ])("refuses %s", (_, params) => {
    expect(() => inlineParams("SELECT ?1", params)).toThrow(/^parameter \?1 cannot be written into SQL/);
  });

  it("refuses a placeholder without a value", () => {
    expect(() => inlineParams("SELECT ?1, ?2", [1])).toThrow("no value for parameter ?2");
  });
});

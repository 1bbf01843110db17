import { describe, expect, it } from "vitest";
import { ProxyError, renderError } from "./errors";

describe("renderError", () => {
  const error = new ProxyError(429, "slow down", {
    type: "rate_limit_error",
    code: "rate_limit_exceeded",
    headers: { "retry-after": "3" },
  });

  it("uses OpenAI's shape under /v1", async () => {
    const response = renderError(error, "/v1/chat/completions");
    expect(response.status).toBe(429);
    expect(response.headers.get("retry-after")).toBe("3");
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.json()).toEqual({
      error: { message: "slow down", type: "rate_limit_error", param: null, code: "rate_limit_exceeded" },
    });
  });

  it("uses the seed's shape elsewhere", async () => {
    expect(await renderError(error, "/").json()).toEqual({
      error: "Too Many Requests",
      message: "slow down",
      code: "rate_limit_exceeded",
    });
  });

  it("defaults the type from the status", () => {
    expect(new ProxyError(400, "x").type).toBe("invalid_request_error");
    expect(new ProxyError(502, "x").type).toBe("server_error");
  });
});

/**
 * Typed errors. Every one carries the server's `status_code`, `detail` and `data`
 * (field errors for 400s), exactly as the API's error shape:
 * {"status": "error", "status_code": 401, "detail": "Authentication required - …", "data": null}
 */
export class ChatSupportAIError extends Error {
  constructor({ status_code = 0, detail = "Request failed", data = null, headers = null } = {}) {
    super(detail);
    this.name = new.target.name;
    this.status_code = status_code;
    this.detail = detail;
    this.data = data;
    this.headers = headers;
  }
}
export class ValidationError extends ChatSupportAIError {}
export class AuthenticationError extends ChatSupportAIError {}
export class PermissionDeniedError extends ChatSupportAIError {}
export class NotFoundError extends ChatSupportAIError {}
export class ConflictError extends ChatSupportAIError {}
export class PayloadTooLargeError extends ChatSupportAIError {}
export class RateLimitError extends ChatSupportAIError {
  constructor(options = {}) {
    super(options);
    const retry = options.headers ? Number(options.headers.get("Retry-After")) : NaN;
    /** Seconds to wait before trying again (from Retry-After). */
    this.retryAfter = Number.isFinite(retry) ? retry : null;
  }
}
export class ServerError extends ChatSupportAIError {}
/** The request never got an HTTP answer (DNS, refused connection, timeout). status_code is 0. */
export class NetworkError extends ChatSupportAIError {}

const BY_STATUS = {
  400: ValidationError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  429: RateLimitError,
};

export function errorFor({ status_code, detail, data, headers }) {
  const Type = BY_STATUS[status_code] || (status_code >= 500 ? ServerError : ChatSupportAIError);
  return new Type({ status_code, detail, data, headers });
}

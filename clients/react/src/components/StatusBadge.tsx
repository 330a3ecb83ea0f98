import { STATUS_APPEARANCE, isStatus, type Status } from "../status";
import { SpinnerGlyph } from "./LoadingSpinner";

export interface StatusBadgeProps {
  status: Status;
  /** Why: the document's error or the workspace's status message. */
  message?: string | null;
  size?: "sm" | "md";
}

/**
 * A badge that announces its status politely when it changes (`role="status"` is a live
 * region); a spinner while work is under way, the message beside the label.
 */
export function StatusBadge({ status, message, size = "md" }: StatusBadgeProps) {
  const appearance = isStatus(status)
    ? STATUS_APPEARANCE[status]
    : { label: String(status), icon: "?", busy: false, problem: false };
  const problem = appearance.problem ? " ih-badge--problem" : "";
  return (
    <span
      className={`ih-badge ih-badge--${status} ih-badge--${size}${problem}`}
      data-status={status}
      role="status"
      aria-live="polite"
      aria-atomic="true"
    >
      {appearance.busy ? (
        <SpinnerGlyph size="sm" />
      ) : (
        <span className="ih-badge__icon" aria-hidden="true">
          {appearance.icon}
        </span>
      )}
      <span className="ih-badge__label">{appearance.label}</span>
      {message ? <span className="ih-badge__message">{message}</span> : null}
    </span>
  );
}

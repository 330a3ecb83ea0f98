export type SpinnerSize = "sm" | "md" | "lg";

export interface LoadingSpinnerProps {
  size?: SpinnerSize;
  /** What is loading, for screen readers. */
  label?: string;
}

/** The spinning ring alone, for use inside something that already announces itself. */
export function SpinnerGlyph({ size = "md" }: { size?: SpinnerSize }) {
  return <span className={`ih-spinner ih-spinner--${size}`} aria-hidden="true" />;
}

export function LoadingSpinner({ size = "md", label = "Loading" }: LoadingSpinnerProps) {
  return (
    <span className="ih-loading" role="status" aria-live="polite">
      <SpinnerGlyph size={size} />
      <span className="ih-visually-hidden">{label}</span>
    </span>
  );
}

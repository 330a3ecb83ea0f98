import { useCallback, useState, type ReactNode } from "react";

/** A one-line notice for what the server refused, and the function that reports it. */
export function useNotice(): [ReactNode, (error: unknown) => void] {
  const [text, setText] = useState<string | null>(null);
  const report = useCallback((error: unknown) => {
    setText(error instanceof Error ? error.message : String(error));
  }, []);
  const notice = text ? (
    <p className="notice" role="alert">
      {text}{" "}
      <button type="button" className="dismiss" onClick={() => setText(null)}>
        Dismiss
      </button>
    </p>
  ) : null;
  return [notice, report];
}

import { useId } from "react";
import type { ProgressStep, StepState } from "../types";

export interface ProgressIndicatorProps {
  title: string;
  description?: string;
  steps: ProgressStep[];
}

const STEP_ICON: Record<StepState, string> = {
  pending: "○",
  active: "◐",
  completed: "✓",
  failed: "✕",
};

const STEP_WORD: Record<StepState, string> = {
  pending: "to do",
  active: "in progress",
  completed: "done",
  failed: "failed",
};

function stepState(step: ProgressStep): StepState {
  return step.state ?? (step.completed ? "completed" : "pending");
}

/** A titled progress bar over a list of steps, readable as one `progressbar`. */
export function ProgressIndicator({ title, description, steps }: ProgressIndicatorProps) {
  const id = useId();
  const done = steps.filter((step) => step.completed).length;
  const current = steps.find((step) => !step.completed);
  const percent = steps.length === 0 ? 0 : Math.round((done / steps.length) * 100);
  const valueText =
    `${done} of ${steps.length} steps completed` + (current ? `; next: ${current.label}` : "");
  return (
    <div className="ih-progress">
      <p className="ih-progress__title" id={`${id}-title`}>
        {title}
      </p>
      {description ? (
        <p className="ih-progress__description" id={`${id}-description`}>
          {description}
        </p>
      ) : null}
      <div
        className="ih-progress__track"
        role="progressbar"
        aria-labelledby={`${id}-title`}
        aria-describedby={description ? `${id}-description` : undefined}
        aria-valuemin={0}
        aria-valuemax={steps.length}
        aria-valuenow={done}
        aria-valuetext={valueText}
      >
        <span className="ih-progress__fill" style={{ width: `${percent}%` }} />
      </div>
      <ol className="ih-progress__steps">
        {steps.map((step, index) => {
          const state = stepState(step);
          return (
            <li
              key={`${index}-${step.label}`}
              className={`ih-step ih-step--${state}`}
              data-state={state}
              aria-current={state === "active" ? "step" : undefined}
            >
              <span className="ih-step__icon" aria-hidden="true">
                {STEP_ICON[state]}
              </span>
              <span className="ih-step__label">{step.label}</span>
              <span className="ih-visually-hidden"> ({STEP_WORD[state]})</span>
            </li>
          );
        })}
      </ol>
    </div>
  );
}

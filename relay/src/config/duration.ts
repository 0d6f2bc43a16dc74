// Durations are part of the contract both programs import (contract/duration.ts).
export { durationMs, parseDuration } from '../../../contract/duration.ts';

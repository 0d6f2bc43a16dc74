// The relay config's types live in the contract both programs import (contract/config.ts).
export type * from '../../../contract/config.ts';

// Float weights from a file: PyTorch .pth (torch.save(state_dict)) or .safetensors, by content.
import * as fs from 'fs';
import { loadStateDict } from './pth';
import { readSafetensors } from './safetensors';
import { FormatError, RawTensor } from './types';

/** Reads a state dict from a .pth (zip) or .safetensors file, detected by its first bytes. */
export function loadWeights(file: string): Map<string, RawTensor> {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new FormatError(`cannot read weights: ${(e as Error).message}`, file);
  }
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b) return loadStateDict(bytes);
  if (bytes.length >= 9 && bytes[8] === 0x7b) return readSafetensors(bytes).tensors;
  throw new FormatError('not a PyTorch .pth (zip) or .safetensors file', file);
}

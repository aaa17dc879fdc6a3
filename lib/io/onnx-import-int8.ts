// Import of int8 ONNX models (QOperator and QDQ forms).
import { GraphModule } from '../nn/graph';
import { OnnxContext, OnnxImportError } from './onnx-import';

/** An int8 ONNX model as a converted GraphModule. */
export function importInt8Onnx(ctx: OnnxContext): GraphModule {
  throw new OnnxImportError('int8 ONNX import is not implemented yet', ctx.file);
}

#!/usr/bin/python3
"""Give a Stable Diffusion UNet exported to ONNX its mid-block self-attention probabilities as an extra output,
`mid_attention_probs`, so that brainnet can run self-attention guidance (SAG, Hong et al. 2022) with it.

The SD export recipe (README, "Stable Diffusion 2.1-base weights"):
  1. optimum-cli export onnx --model stabilityai/stable-diffusion-2-1-base --task text-to-image sd21-onnx/
  2. /usr/bin/python3 data-prep/add-sag-output.py --unet sd21-onnx/unet/model.onnx

Step 2 finds the Softmax of the mid block's first self-attention (diffusers' module path
mid_block.attentions[0].transformer_blocks[0].attn1, which torch.onnx.export writes into the node names as
/mid_block/attentions.0/transformer_blocks.0/attn1/...), and adds its output as the graph output
`mid_attention_probs`: [B, heads, N, N] (scaled_dot_product_attention) or [B*heads, N, N] (diffusers' older
attention processor), N the mid block's h' x w' positions. Nothing else changes: the weights stay in
model.onnx_data (the file is read without them and keeps pointing at them), out_sample stays the first output.
The file is rewritten in place through a temporary file; --out writes elsewhere (in the same folder, so that the
external weights are still found). Running it twice is harmless. --node NAME picks another Softmax node.

Needs Debian's python3-onnx (apt-get install -y python3-onnx); no torch, no diffusers.
"""
import argparse
import os
import sys

OUTPUT = 'mid_attention_probs'
PATH = ('mid_block', 'attentions.0', 'transformer_blocks.0', 'attn1')


def find_softmax(graph, name=None):
    """The mid block's attn1 Softmax node: by name, or the first whose name (or output) has the module path."""
    soft = [n for n in graph.node if n.op_type == 'Softmax']
    if name:
        hit = [n for n in soft if n.name == name]
        if not hit:
            sys.exit(f'add-sag-output: no Softmax node named {name!r}; Softmax nodes: {", ".join(n.name for n in soft[:40]) or "none"}')
        return hit[0]

    def on_path(n):
        text = n.name + ' ' + ' '.join(n.output)
        return all(p in text for p in PATH)
    hit = [n for n in soft if on_path(n)]
    if not hit:
        mid = [n.name or n.output[0] for n in soft if 'mid' in (n.name + ' '.join(n.output))]
        sys.exit('add-sag-output: found no Softmax under /mid_block/attentions.0/transformer_blocks.0/attn1/ '
                 f'(expected a UNet exported from diffusers by optimum-cli or torch.onnx.export). Softmax nodes near the '
                 f'mid block: {", ".join(mid[:20]) or "none"}; of all {len(soft)}: {", ".join((n.name or n.output[0]) for n in soft[:12])}. '
                 'Pass --node NAME to pick one.')
    return hit[0]


def add_output(src, dst=None, node=None):
    """Adds `mid_attention_probs` to the ONNX UNet at src (written to dst, default src); returns the Softmax node's name."""
    import onnx
    from onnx import helper, TensorProto
    model = onnx.load(src, load_external_data=False)
    g = model.graph
    outs = [o.name for o in g.output]
    if not outs:
        sys.exit(f'add-sag-output: {src} has no graph outputs; expected a UNet with out_sample')
    if OUTPUT in outs:
        print(f'add-sag-output: {src} already has the output {OUTPUT}; nothing to do')
        if dst and dst != src:
            onnx.save(model, dst)
        return None
    sm = find_softmax(g, node)
    g.node.append(helper.make_node('Identity', [sm.output[0]], [OUTPUT], name='brainnet_sag/mid_attention_probs'))
    g.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, None))
    dst = dst or src
    if os.path.dirname(os.path.abspath(dst)) != os.path.dirname(os.path.abspath(src)):
        has_external = any(t.data_location == TensorProto.EXTERNAL for t in g.initializer)
        if has_external:
            sys.exit(f'add-sag-output: {src} keeps its weights in external files; write --out into the same folder ({os.path.dirname(os.path.abspath(src))})')
    tmp = dst + '.tmp'
    onnx.save(model, tmp)
    os.replace(tmp, dst)
    return sm.name or sm.output[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--unet', required=True, help='unet/model.onnx of an SD ONNX export')
    ap.add_argument('--out', help='where to write (default: in place)')
    ap.add_argument('--node', help='name of the Softmax node to expose (default: the mid block\'s attn1)')
    a = ap.parse_args()
    if not os.path.isfile(a.unet):
        sys.exit(f'add-sag-output: {a.unet}: no such file; expected unet/model.onnx of `optimum-cli export onnx --model stabilityai/stable-diffusion-2-1-base`')
    name = add_output(a.unet, a.out, a.node)
    if name:
        print(f'add-sag-output: {a.out or a.unet}: output {OUTPUT} = {name}')


if __name__ == '__main__':
    main()

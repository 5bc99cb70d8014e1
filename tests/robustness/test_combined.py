"""The combined markdown table: only the sets evaluated, one normaliser per mCE column, a note per column."""
from fan_stl.robustness.combined import combined_table


def test_columns_follow_the_sets_and_name_their_normaliser():
    a = {'model': 'a', 'clean': {'top1': 80.0}, 'imagenet_c_bar': {'summary': {
        'mean_corruption_accuracy': 55.5, 'mce': 90.0, 'baseline': 'b', 'notes': []}},
        'cue_conflict': {'shape_bias': 0.25}}
    b = {'model': 'b', 'clean': {'top1': 70.0}, 'imagenet_c_bar': {'summary': {
        'mean_corruption_accuracy': 50.0, 'mce': 100.0, 'baseline': 'b', 'notes': ['x']}}}
    table = combined_table([a, b]).splitlines()
    assert table[0] == '| model | clean | ImageNet-C-bar acc | ImageNet-C-bar mCE vs b | shape bias % |'
    assert table[2] == '| a | 80.00 | 55.50 | 90.00 | 25.00 |'
    assert table[3] == '| b | 70.00 | 50.00 | 100.00 | - |'
    assert any(line.startswith('- **ImageNet-C-bar mCE vs b**: mean CE over the 10 corruptions normalised by b')
               for line in table)
    assert '- b: x' in table

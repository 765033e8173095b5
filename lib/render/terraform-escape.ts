/**
 * Terraform interpolates `${` and `%{` inside every JSON string and cdktf does not
 * escape literal text. Rendered files are full of shell `${var}`, so every literal
 * `${` becomes `$${` and `%{` becomes `%%{`. cdktf's own token placeholders
 * (`${TfToken[...]}`) are left alone: cdktf turns them into real references.
 */
export function escapeForTerraform(text: string): string {
  return text.replace(/\$\{(?!TfToken\[)/g, () => '$${').replace(/%\{/g, '%%{');
}

/** The inverse, as Terraform applies it to a literal: what the machine finally receives. */
export function unescapeTerraformLiteral(text: string): string {
  return text.replace(/\$\$\{/g, '${').replace(/%%\{/g, '%{');
}

# Code-signing hook for Windows: signs the given files with signtool when a certificate is set.
#   pwsh packaging/windows/sign.ps1 dist\kminer\kminer.exe dist\kminer\kminerw.exe
# Configure with environment variables (CI secrets); without KMINER_SIGN_CERT it only says so:
#   KMINER_SIGN_CERT           path to the code-signing certificate (.pfx)
#   KMINER_SIGN_CERT_B64       or: the .pfx as base64 (written to a temp file, deleted after)
#   KMINER_SIGN_PASSWORD       the .pfx password
#   KMINER_SIGN_TIMESTAMP_URL  RFC 3161 timestamp server of your certificate authority (recommended)
#   KMINER_SIGNTOOL            path to signtool.exe (default: the newest Windows SDK's x64 signtool)
param([Parameter(ValueFromRemainingArguments = $true)][string[]]$Files)
$ErrorActionPreference = "Stop"
$cert = $env:KMINER_SIGN_CERT
$tmp = $null
if (-not $cert -and $env:KMINER_SIGN_CERT_B64) {
  $tmp = Join-Path $env:RUNNER_TEMP ("kminer-sign-" + [guid]::NewGuid() + ".pfx")
  [IO.File]::WriteAllBytes($tmp, [Convert]::FromBase64String($env:KMINER_SIGN_CERT_B64))
  $cert = $tmp
}
if (-not $cert) {
  Write-Host "sign: KMINER_SIGN_CERT is not set: files left unsigned (see packaging/README.md, 'Signing')"
  exit 0
}
try {
  $signtool = $env:KMINER_SIGNTOOL
  if (-not $signtool) {
    $signtool = Get-ChildItem "${env:ProgramFiles(x86)}\Windows Kits\10\bin\*\x64\signtool.exe" |
      Sort-Object FullName -Descending | Select-Object -First 1 -ExpandProperty FullName
  }
  if (-not $signtool) { throw "signtool.exe not found (install the Windows SDK or set KMINER_SIGNTOOL)" }
  $args = @("sign", "/fd", "sha256", "/f", $cert)
  if ($env:KMINER_SIGN_PASSWORD) { $args += @("/p", $env:KMINER_SIGN_PASSWORD) }
  if ($env:KMINER_SIGN_TIMESTAMP_URL) { $args += @("/tr", $env:KMINER_SIGN_TIMESTAMP_URL, "/td", "sha256") }
  foreach ($f in $Files) {
    & $signtool @args $f
    if ($LASTEXITCODE -ne 0) { throw "signtool failed on $f" }
    & $signtool verify /pa $f
    if ($LASTEXITCODE -ne 0) { throw "signature on $f does not verify" }
    Write-Host "sign: signed $f"
  }
} finally {
  if ($tmp) { Remove-Item -Force $tmp }
}

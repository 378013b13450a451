# Installs bookstore on Windows from a release, without Rust:
#   irm https://github.com/OWNER/bookstore/releases/latest/download/install.ps1 | iex
# Checks the archive's SHA-256 against the release's and puts bookstore.exe and the Linux x86_64
# bookstore-app it bakes (beside it, where `up` looks) into $env:BOOKSTORE_INSTALL_DIR (default
# %LOCALAPPDATA%\bookstore\bin), then adds that directory to the user's PATH.
$ErrorActionPreference = 'Stop'
$repo = if ($env:BOOKSTORE_REPO) { $env:BOOKSTORE_REPO } else { 'bookstore-dev/bookstore' }
$base = if ($env:BOOKSTORE_RELEASE_URL) { $env:BOOKSTORE_RELEASE_URL } else { "https://github.com/$repo/releases/latest/download" }
$dir = if ($env:BOOKSTORE_INSTALL_DIR) { $env:BOOKSTORE_INSTALL_DIR } else { Join-Path $env:LOCALAPPDATA 'bookstore\bin' }
$target = 'x86_64-pc-windows-msvc'
$archive = "bookstore-$target.zip"
$tmp = Join-Path ([IO.Path]::GetTempPath()) ([Guid]::NewGuid())
New-Item -ItemType Directory -Path $tmp | Out-Null
try {
  Invoke-WebRequest "$base/$archive" -OutFile (Join-Path $tmp $archive) -UseBasicParsing
  Invoke-WebRequest "$base/$archive.sha256" -OutFile (Join-Path $tmp "$archive.sha256") -UseBasicParsing
  $want = ((Get-Content (Join-Path $tmp "$archive.sha256")) -split ' ')[0].ToLower()
  $have = (Get-FileHash (Join-Path $tmp $archive) -Algorithm SHA256).Hash.ToLower()
  if ($want -ne $have) { throw "$archive has SHA-256 $have, the release says $want: not installed" }
  Expand-Archive (Join-Path $tmp $archive) -DestinationPath $tmp
  New-Item -ItemType Directory -Force -Path $dir | Out-Null
  foreach ($f in 'bookstore.exe', 'bookstore-app') {
    Copy-Item (Join-Path $tmp "bookstore-$target\$f") (Join-Path $dir $f) -Force
  }
  $path = [Environment]::GetEnvironmentVariable('Path', 'User')
  if (-not ($path -split ';' | Where-Object { $_ -eq $dir })) {
    [Environment]::SetEnvironmentVariable('Path', "$dir;$path", 'User')
    Write-Host "added $dir to your PATH (open a new terminal)"
  }
  Write-Host "installed $(& (Join-Path $dir 'bookstore.exe') --version) in $dir"
} finally {
  Remove-Item -Recurse -Force $tmp
}

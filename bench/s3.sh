#!/usr/bin/env bash
# 1 GB upload and download against s3s-fs on loopback: BrightRun's S3 store, `aws s3 cp` with
# its default multipart settings and tuned to the same part size and concurrency, and
# `rclone copy` (Debian's package), each way, with wall and CPU seconds.
#   bash bench/s3.sh [SIZE_MB] [PART_MB] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb="${1:-1000}" part_mb="${2:-16}" conc="${3:-8}"
s3s="$(bash scripts/s3-server.sh | tail -n 1)"
aws="$(bash scripts/tools-env.sh | tail -n 1)/aws"
command -v rclone >/dev/null || apt-get install -y -qq rclone >/dev/null
cargo build --release -q -p brightrun-engine --example s3_transfer
work="$(mktemp -d)"; trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/root/lora-models" "$work/root/bench"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-0123456789 AWS_DEFAULT_REGION=us-east-1
"$s3s" --host 127.0.0.1 --port "$port" --access-key "$AWS_ACCESS_KEY_ID" --secret-key "$AWS_SECRET_ACCESS_KEY" "$work/root" >/dev/null 2>&1 &
pid=$!
until (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done
ep="http://127.0.0.1:$port"
head -c "$((size_mb * 1000000))" /dev/urandom > "$work/file.bin"
echo "file: $size_mb MB; part ${part_mb} MiB, concurrency $conc; $(nproc) cores"
t() { # LABEL CMD...: wall and CPU (user+sys) of CMD
  local label="$1"; shift
  /usr/bin/time -f "%e %U %S" -o "$work/time" "$@" >/dev/null 2>&1
  read -r e u s < "$work/time"
  awk -v l="$label" -v e="$e" -v u="$u" -v s="$s" -v mb="$size_mb" \
    'BEGIN { printf "%-34s %6.2f s  %7.1f MB/s  cpu %5.2f s\n", l, e, mb / e, u + s }'
}
target/release/examples/s3_transfer "$ep" "$work/file.bin" "$part_mb" "$conc"
cfg_default="$work/aws-default"; : > "$cfg_default"
cfg_tuned="$work/aws-tuned"
printf '[default]\ns3 =\n  multipart_chunksize = %sMB\n  max_concurrent_requests = %s\n' "$part_mb" "$conc" > "$cfg_tuned"
for mode in default tuned; do
  cfg="$work/aws-$mode"
  AWS_CONFIG_FILE="$cfg" t "aws s3 cp ($mode) upload" "$aws" --endpoint-url "$ep" s3 cp "$work/file.bin" s3://bench/aws.bin
  AWS_CONFIG_FILE="$cfg" t "aws s3 cp ($mode) download" "$aws" --endpoint-url "$ep" s3 cp s3://bench/aws.bin "$work/aws-back.bin"
  rm -f "$work/aws-back.bin"
done
# rclone 1.60 refuses AWS_CA_BUNDLE (set on some machines) for a plain-http endpoint.
export RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ENDPOINT="$ep" \
  RCLONE_CONFIG_B_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" RCLONE_CONFIG_B_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  RCLONE_CONFIG_B_FORCE_PATH_STYLE=true
mkdir -p "$work/rc-up" "$work/rc-down"; ln "$work/file.bin" "$work/rc-up/rclone.bin"
t "rclone copy upload" env -u AWS_CA_BUNDLE rclone copy --s3-chunk-size "${part_mb}M" --s3-upload-concurrency "$conc" "$work/rc-up" b:bench
t "rclone copy download" env -u AWS_CA_BUNDLE rclone copy --multi-thread-streams "$conc" b:bench/rclone.bin "$work/rc-down"

# vmtest-timeout: 60
# --cpu 50% is cpu.max: a 3 s busy loop gets about half a CPU (throttled, with
# cpu.stat's throttling in the record), and PSI figures are present on v2.
. /vmtest/lib.sh
need_cronrun

cr cpu --no-lock -n vm-cpu --cpu 50% -- "$PAYLOAD" spin 3
expect_eq "exit status of spin 3" "$rc" 0
summary_written cpu
expect_num "limits.cpu_quota_pct" "$(j cpu cpu_quota_pct)" 'x == 50'
expect_num "usage.cpu_throttled_s" "$(j cpu cpu_throttled_s)" 'x > 0'
expect_num "usage.cpu_nr_throttled" "$(j cpu cpu_nr_throttled)" 'x >= 1'
user=$(j cpu cpu_user_s) sys=$(j cpu cpu_system_s) wall=$(j cpu wall_s)
expect_num "usage.cpu_user_s" "$user" 'x > 0'
expect_num "usage.cpu_system_s" "$sys" 'x >= 0'
expect_num "wall_s" "$wall" 'x >= 2.9'
ratio=$(awk "BEGIN { printf \"%.2f\", ($user + $sys) / $wall }")
expect_num "CPU time / wall time under --cpu 50%" "$ratio" 'x >= 0.35 && x <= 0.65'
psi=$(jobj cpu pressure_some_s)
echo "pressure_some_s: $psi"
[ -n "$psi" ] || fail "usage.pressure_some_s is not an object: $(j cpu pressure_some_s)"
for res in cpu memory io; do
  v=$(echo "$psi" | grep -o "\"$res\" *: *[^,}]*" | sed 's/.*: *//' | tr -d ' ')
  is_num "$v" || fail "usage.pressure_some_s.$res is '$v', want a number on v2"
done
detail "cpu/wall=$ratio throttled_s=$(j cpu cpu_throttled_s) psi=$psi"

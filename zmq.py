import builtins
builtins.WHIP_PWNED = True
open('/proc/self/cwd/../PWNED', 'w')

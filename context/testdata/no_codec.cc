// Compile-time rule: an argument without a Codec cannot be given to a process. Compiled by
// no_codec_compile_test.sh twice: with -DGIVE_IT_A_CODEC it must compile, without it must fail with
// mp's readable message.
#include "start_methods/target.h"

namespace user {
struct Settings {
  int level = 0;
};
#ifdef GIVE_IT_A_CODEC
MP_FIELDS(Settings, level);
#endif
int Run(Settings s) { return s.level; }
}  // namespace user

mp::Target Make() { return mp::Call<&user::Run>(user::Settings{3}); }
